/** Small tools shared by the fault, soak and hostile-input suites. */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { waitFor as waitUntil } from '../helpers/wait';

export { mulberry32 } from '../helpers/random';
export { freePort } from '../helpers/ports';

/** Asserts the OpenAI error shape: {"error":{"message","type","code"}} with string message and type. */
export function assertOpenAIError(body: unknown, what = 'response'): { message: string; type: string; code: string | null } {
  const e = (body as { error?: { message?: unknown; type?: unknown; code?: unknown } })?.error;
  assert.ok(e && typeof e === 'object', `${what}: no "error" object in ${JSON.stringify(body)?.slice(0, 300)}`);
  assert.equal(typeof e.message, 'string', `${what}: error.message`);
  assert.equal(typeof e.type, 'string', `${what}: error.type`);
  assert.ok('code' in e && (typeof e.code === 'string' || e.code === null), `${what}: error.code`);
  return e as { message: string; type: string; code: string | null };
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

/** POSTs JSON (or raw text) and reads the whole answer. */
export async function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<JsonResponse> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' || body instanceof Uint8Array ? (body as string) : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Sends raw bytes on a fresh TCP connection and returns everything received until the server closes it (or timeoutMs). */
export function rawHttp(base: string, data: string | Buffer, timeoutMs = 5000): Promise<string> {
  const u = new URL(base);
  return new Promise((resolve) => {
    let out = '';
    const s = connect(Number(u.port), u.hostname, () => s.write(data));
    const timer = setTimeout(() => s.destroy(), timeoutMs);
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/** test/helpers/wait.ts's loop, 10 s by default. */
export const waitFor = (cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> => waitUntil(cond, what, timeoutMs);

export const chatBody = (model: string, extra: Record<string, unknown> = {}) => ({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });

/** Reads an SSE body: the concatenated delta text, whether [DONE] came, and any error event. */
export function parseSse(text: string): {
  content: string;
  done: boolean;
  error?: { message: string; type: string; code: string | null };
  usage?: { prompt_tokens: number; completion_tokens: number };
} {
  let content = '';
  let done = false;
  let error;
  let usage;
  for (const event of text.split(/\n\n/)) {
    const line = event.split('\n').find((l) => l.startsWith('data: '));
    if (!line) continue;
    const data = line.slice(6);
    if (data === '[DONE]') {
      done = true;
      continue;
    }
    const chunk = JSON.parse(data) as { error?: unknown; usage?: { prompt_tokens: number; completion_tokens: number }; choices?: Array<{ delta?: { content?: string }; text?: string }> };
    if (chunk.error) error = assertOpenAIError(chunk, 'SSE error event');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices ?? []) content += c.delta?.content ?? c.text ?? '';
  }
  return { content, done, error, usage };
}
