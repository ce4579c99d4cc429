/**
 * Smoke test for a running gateway (local or deployed):
 *
 *   npm run smoke -- --url https://gateway.example.com/v1 --key sk-... [--model gpt-4o-mini]
 *                    [--max-latency-ms 500] [--max-first-byte-ms MS] [--timeout-ms 30000] [--health]
 *
 * The URL is the public one as the route exposes it (`pulumi stack output publicUrl`, ending in /v1),
 * or the bare origin; both work. Checks, in order: GET /v1/models (with the key), a chat completion
 * (prints its latency, provider and usage; fails when the latency passes --max-latency-ms, default
 * 500), and a streamed chat completion (time to first byte, chunk count, total time; fails when the
 * first byte comes later than --max-first-byte-ms, when given: the scheduled probe judges the gateway's
 * path by it, not by how long the model takes to write a whole answer). `--health` adds
 * GET /health first, for a gateway reached directly (the public route serves /v1 only). Prints one
 * line per check and exits non-zero, with the reason, if any check fails. The key may also come from
 * GATEWAY_KEY, the URL from GATEWAY_URL.
 */

interface Options {
  url: string;
  key: string;
  model?: string;
  timeoutMs: number;
  maxLatencyMs: number;
  maxFirstByteMs?: number;
  health: boolean;
}

class CheckFailed extends Error {}

const USAGE = 'usage: npm run smoke -- --url URL --key KEY [--model MODEL] [--max-latency-ms MS] [--max-first-byte-ms MS] [--timeout-ms MS] [--health]';
// Self-contained (no import of scripts/cli.ts): the image compiles this file alone for the scheduled probe.
const HELP = `${USAGE}

Checks a running gateway: GET /v1/models, a chat completion (latency, provider, usage) and a streamed
one (time to first byte, chunks). Prints one line per check; exits 0 when all pass, 1 when one fails,
2 on a usage error.

  --url URL             the gateway's public URL (ending in /v1) or its origin; or GATEWAY_URL
  --key KEY             a client key; or GATEWAY_KEY (safer: not in the shell history)
  --model MODEL         the model to call (default: the first one /v1/models lists)
  --max-latency-ms MS   fail when the chat completion takes longer (default: 500)
  --max-first-byte-ms MS  fail when the stream's first byte comes later (default: not checked)
  --timeout-ms MS       per request (default: 30000)
  --health              also GET /health first (a gateway reached directly, not through the route)
  -h, --help            this help

Example:
  GATEWAY_KEY=sk-gw-... npm run smoke -- --url http://127.0.0.1:8080/v1 --health
`;

const FLAGS = new Set(['--url', '--key', '--model', '--max-latency-ms', '--max-first-byte-ms', '--timeout-ms']);

function usage(problem: string): never {
  process.stderr.write(`smoke: ${problem}\n${USAGE}\nRun with --help for the options.\n`);
  process.exit(2);
}

/** Every argument is a known flag (`--flag VALUE`, `--flag=VALUE`, or --health). */
function checkFlags(argv: string[]): void {
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i].split('=')[0];
    if (argv[i] === '--health') continue;
    if (!FLAGS.has(flag)) usage(argv[i].startsWith('-') ? `unknown option ${flag}` : `unexpected argument "${argv[i]}"`);
    if (!argv[i].includes('=')) {
      if (argv[i + 1] === undefined) usage(`${flag} needs a value`);
      i++;
    }
  }
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv): Options {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  checkFlags(argv);
  const value = (name: string) => {
    const i = argv.indexOf(name);
    if (i >= 0) return argv[i + 1];
    return argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
  };
  const url = value('--url') ?? env.GATEWAY_URL;
  const key = value('--key') ?? env.GATEWAY_KEY;
  if (!url) usage('missing --url');
  if (!key) usage('missing --key');
  try {
    new URL(url);
  } catch {
    usage(`--url is not a URL: ${url}`);
  }
  const timeoutMs = Number(value('--timeout-ms') ?? 30_000);
  if (!(timeoutMs > 0)) usage('--timeout-ms must be a positive number');
  const maxLatencyMs = Number(value('--max-latency-ms') ?? DEFAULT_MAX_LATENCY_MS);
  if (!(maxLatencyMs > 0)) usage('--max-latency-ms must be a positive number');
  const firstByte = value('--max-first-byte-ms');
  const maxFirstByteMs = firstByte === undefined ? undefined : Number(firstByte);
  if (maxFirstByteMs !== undefined && !(maxFirstByteMs > 0)) usage('--max-first-byte-ms must be a positive number');
  return { url: baseUrl(url), key, model: value('--model'), timeoutMs, maxLatencyMs, maxFirstByteMs, health: argv.includes('--health') };
}

/** The original design's target for a chat completion through the gateway. */
export const DEFAULT_MAX_LATENCY_MS = 500;

/** The origin (and any path prefix) without a trailing slash or /v1: the public URL ends in /v1. */
export function baseUrl(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/v1$/, '');
}

const ms = (t0: number) => `${(performance.now() - t0).toFixed(1)} ms`;

/** A short description of a failed fetch (the cause carries ECONNREFUSED and friends). */
function reason(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return 'timed out';
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

async function call(opts: Options, path: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(`${opts.url}${path}`, { ...init, signal: AbortSignal.timeout(opts.timeoutMs) });
  } catch (err) {
    throw new CheckFailed(`${init.method ?? 'GET'} ${path}: ${reason(err)}`);
  }
}

async function expectOk(res: Response, what: string): Promise<string> {
  const text = await res.text();
  if (!res.ok) {
    let detail = text.slice(0, 300);
    try {
      detail = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? detail;
    } catch {
      /* not JSON */
    }
    throw new CheckFailed(`${what}: HTTP ${res.status}: ${detail}`);
  }
  return text;
}

function json<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new CheckFailed(`${what}: the response is not JSON: ${text.slice(0, 200)}`);
  }
}

const authHeaders = (opts: Options) => ({ authorization: `Bearer ${opts.key}`, 'content-type': 'application/json' });

async function health(opts: Options): Promise<string> {
  const t0 = performance.now();
  const body = json<{ status?: string }>(await expectOk(await call(opts, '/health'), 'GET /health'), 'GET /health');
  if (body.status !== 'ok') throw new CheckFailed(`GET /health: status is ${JSON.stringify(body.status)}, not "ok"`);
  return `status ok (${ms(t0)})`;
}

async function models(opts: Options): Promise<string> {
  const t0 = performance.now();
  const body = json<{ data?: Array<{ id?: string }> }>(await expectOk(await call(opts, '/v1/models', { headers: authHeaders(opts) }), 'GET /v1/models'), 'GET /v1/models');
  const ids = (body.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === 'string');
  if (!ids.length) throw new CheckFailed('GET /v1/models: the list is empty');
  if (opts.model && !ids.includes(opts.model)) throw new CheckFailed(`GET /v1/models: "${opts.model}" is not among ${ids.join(', ')}`);
  opts.model ??= ids[0];
  return `${ids.length} model(s): ${ids.slice(0, 8).join(', ')}${ids.length > 8 ? ', ...' : ''}; using ${opts.model} (${ms(t0)})`;
}

const chatBody = (opts: Options, stream: boolean) => JSON.stringify({ model: opts.model, messages: [{ role: 'user', content: 'Reply with the single word: pong' }], max_tokens: 16, stream });

async function chat(opts: Options): Promise<string> {
  const t0 = performance.now();
  const res = await call(opts, '/v1/chat/completions', { method: 'POST', headers: authHeaders(opts), body: chatBody(opts, false) });
  const text = await expectOk(res, 'POST /v1/chat/completions');
  const elapsed = performance.now() - t0;
  const latency = ms(t0);
  if (elapsed > opts.maxLatencyMs) throw new CheckFailed(`chat completion: latency ${latency} is over --max-latency-ms ${opts.maxLatencyMs}`);
  const body = json<{ choices?: Array<{ message?: { content?: unknown } }>; usage?: { prompt_tokens?: number; completion_tokens?: number } }>(text, 'chat completion');
  const content = body.choices?.[0]?.message?.content;
  if (typeof content !== 'string') throw new CheckFailed(`chat completion: no choices[0].message.content in ${text.slice(0, 200)}`);
  const usage = body.usage ? `, usage ${body.usage.prompt_tokens}+${body.usage.completion_tokens} tokens` : '';
  return `latency ${latency}, provider ${res.headers.get('x-gateway-provider') ?? '?'}, attempts ${res.headers.get('x-gateway-attempts') ?? '?'}${usage}, reply ${JSON.stringify(content.slice(0, 40))}`;
}

async function stream(opts: Options): Promise<string> {
  const t0 = performance.now();
  const res = await call(opts, '/v1/chat/completions', { method: 'POST', headers: { ...authHeaders(opts), accept: 'text/event-stream' }, body: chatBody(opts, true) });
  if (!res.ok) await expectOk(res, 'POST /v1/chat/completions (stream)');
  if (!res.headers.get('content-type')?.includes('text/event-stream')) throw new CheckFailed(`stream: content-type is ${res.headers.get('content-type')}, not text/event-stream`);
  const decoder = new TextDecoder();
  let firstByte: string | undefined;
  let pending = '';
  let chunks = 0;
  let done = false;
  try {
    for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
      if (firstByte === undefined) {
        firstByte = ms(t0);
        const elapsed = performance.now() - t0;
        if (opts.maxFirstByteMs !== undefined && elapsed > opts.maxFirstByteMs) throw new CheckFailed(`stream: first byte after ${firstByte}, over --max-first-byte-ms ${opts.maxFirstByteMs}`);
      }
      pending += decoder.decode(part, { stream: true });
      let end: number;
      while ((end = pending.indexOf('\n\n')) >= 0) {
        const event = pending.slice(0, end);
        pending = pending.slice(end + 2);
        for (const line of event.split('\n')) {
          if (!line.startsWith('data:')) continue;
          const data = line.slice(5).trim();
          if (data === '[DONE]') {
            done = true;
            continue;
          }
          const parsed = json<{ error?: { message?: string }; choices?: unknown[] }>(data, 'stream event');
          if (parsed.error) throw new CheckFailed(`stream: error event: ${parsed.error.message}`);
          if (Array.isArray(parsed.choices) && parsed.choices.length) chunks++;
        }
      }
    }
  } catch (err) {
    if (err instanceof CheckFailed) throw err;
    throw new CheckFailed(`stream: cut after ${chunks} chunk(s): ${reason(err)}`);
  }
  if (!done) throw new CheckFailed(`stream: ended after ${chunks} chunk(s) without data: [DONE]`);
  if (!chunks) throw new CheckFailed('stream: no chunk carried a choice');
  return `first byte ${firstByte}, ${chunks} chunk(s), total ${ms(t0)}, x-gateway-provider ${res.headers.get('x-gateway-provider') ?? '?'}`;
}

export async function smoke(opts: Options, out: (line: string) => void): Promise<boolean> {
  out(`smoke test of ${opts.url}`);
  let ok = true;
  const steps: Array<[string, (o: Options) => Promise<string>]> = [
    ...(opts.health ? [['health', health] as [string, (o: Options) => Promise<string>]] : []),
    ['models', models],
    ['chat', chat],
    ['stream', stream],
  ];
  for (const [name, step] of steps) {
    if (!ok && name !== 'models' && !opts.model) {
      out(`SKIP ${name}: no model known (pass --model)`);
      continue;
    }
    try {
      out(`ok   ${name.padEnd(6)} ${await step(opts)}`);
    } catch (err) {
      ok = false;
      out(`FAIL ${name.padEnd(6)} ${err instanceof CheckFailed ? err.message : (err as Error).stack}`);
    }
  }
  out(ok ? 'smoke test passed' : 'smoke test FAILED');
  return ok;
}

if (require.main === module) {
  const opts = parseArgs(process.argv.slice(2), process.env);
  smoke(opts, (line) => process.stdout.write(`${line}\n`)).then(
    (ok) => process.exit(ok ? 0 : 1),
    (err: Error) => {
      process.stderr.write(`smoke test crashed: ${err.message}\n`);
      process.exit(1);
    },
  );
}
