/**
 * Soak: 50,000 mixed requests (chat, streams, completions, embeddings, bad inputs) through one
 * in-process gateway, with upstream faults injected at random from a seeded PRNG. Afterwards:
 * no request hung, every response is a success or an OpenAI-shaped error (streams: complete,
 * or ended by an OpenAI-shaped SSE error event), and the request and cost counters agree with
 * what the client saw.
 *
 * The fault for each request rides in the request body (`x_fault`, an unknown field the
 * gateway passes through untouched), so the fake upstreams act on it deterministically.
 */
import assert from 'node:assert/strict';
import { Pool } from 'undici';
import { costUsd } from '../../service/cost/cost';
import { estimateCompletionTokens, estimatePromptTokens } from '../../service/cost/tokens';
import { hashKey } from '../../service/tenancy/keys';
import { Behavior, FakeUpstream, Received, startFakeUpstream } from '../helpers/fake-upstream';
import { provider, startTestGateway, TestGateway } from '../helpers/gateway';
import { assertOpenAIError, mulberry32, parseSse } from './helpers';

const TOTAL = 50_000;
const CONCURRENCY = 64;
const SEED = 0x5eed_2026;
const CLIENT_KEY = 'sk-gw-soak-client';
const ADMIN_KEY = 'sk-gw-soak-admin';
const PROVIDER_TIMEOUT_MS = 250;
const DEADLINE_MS = 1500;
/** A request not settled by then counts as hung. */
const CLIENT_TIMEOUT_MS = DEADLINE_MS + 3000;
const PRICES: Record<string, { input_per_million: number; output_per_million: number }> = {
  a: { input_per_million: 1, output_per_million: 2 },
  b: { input_per_million: 3, output_per_million: 5 },
};

type Fault = Partial<Record<'a' | 'b', string>>;

/** Picks a fault for one request from the seeded PRNG (about 30% of requests carry one). */
function pickFault(rnd: () => number, stream: boolean): Fault {
  const x = rnd();
  if (x < 0.7) return {};
  if (x < 0.76) return { a: 'status500' };
  if (x < 0.8) return { a: 'status429' };
  if (x < 0.84) return { a: 'reset' };
  if (x < 0.87) return { a: stream ? 'invalid-sse-first' : 'invalid-json' };
  if (x < 0.9) return stream ? { a: 'cut' } : { a: 'status400' };
  if (x < 0.92) return stream ? { a: 'invalid-sse-mid' } : { a: 'empty-200' };
  if (x < 0.94) return { a: 'status502', b: 'status503' };
  if (x < 0.96) return { a: 'status401' };
  if (x < 0.975) return { a: 'reset', b: 'reset' };
  if (x < 0.98) return { a: 'hang' };
  return { a: 'status404' };
}

function behaviorFor(name: 'a' | 'b') {
  return (req: Received): Behavior => {
    const fault = (req.body.x_fault as Fault | undefined)?.[name];
    const stream = req.body.stream === true;
    const ok: Behavior = stream ? { kind: 'stream' } : { kind: 'ok' };
    switch (fault) {
      case undefined:
        return ok;
      case 'status500':
        return { kind: 'status', status: 500 };
      case 'status429':
        return { kind: 'status', status: 429 };
      case 'status502':
        return { kind: 'status', status: 502 };
      case 'status503':
        return { kind: 'status', status: 503 };
      case 'status401':
        return { kind: 'status', status: 401, body: { error: { message: `Incorrect API key provided: sk-provider-${name}-secret`, type: 'invalid_request_error', code: 'invalid_api_key' } } };
      case 'status404':
        return { kind: 'status', status: 404 };
      case 'status400':
        return { kind: 'status', status: 400, body: { error: { message: 'fake says the request is bad', type: 'invalid_request_error', code: 'invalid_value', param: 'temperature' } } };
      case 'reset':
        return { kind: 'reset' };
      case 'hang':
        return { kind: 'hang' };
      case 'invalid-json':
        return { kind: 'invalid-json' };
      case 'empty-200':
        return { kind: 'status', status: 200, body: [] };
      case 'invalid-sse-first':
        return { kind: 'stream', invalidAt: 0 };
      case 'invalid-sse-mid':
        return { kind: 'stream', invalidAt: 3, delayMs: 2 };
      case 'cut':
        return { kind: 'stream', cutAfter: 3, delayMs: 2 };
      default:
        throw new Error(`unknown fault ${fault}`);
    }
  };
}

type Kind = 'chat' | 'chat-stream' | 'completion' | 'completion-stream' | 'embedding' | 'bad';

interface Planned {
  kind: Kind;
  path: string;
  body: string;
  parsedBody?: Record<string, unknown>;
  headers: Record<string, string>;
}

const BAD_INPUTS: Array<Omit<Planned, 'kind'>> = [
  { path: '/v1/chat/completions', body: '{"model":"m",', headers: {} },
  { path: '/v1/chat/completions', body: '{"model":"m"}', headers: {} },
  { path: '/v1/chat/completions', body: '{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":-1}', headers: {} },
  { path: '/v1/chat/completions', body: '{"model":"nope","messages":[{"role":"user","content":"x"}]}', headers: {} },
  { path: '/v1/chat/completions', body: '{"model":"m","messages":[]}', headers: { 'content-type': 'text/plain' } },
  { path: '/v1/chat/completions', body: '{"model":"m","messages":[{"role":"user","content":"x"}]}', headers: { authorization: 'Bearer sk-gw-not-a-key' } },
  { path: '/v1/embeddings', body: '{"model":"e","input":"x","stream":true}', headers: {} },
  { path: '/v1/completions', body: `{"model":"c","prompt":"x","deep":${'['.repeat(80)}${']'.repeat(80)}}`, headers: {} },
];

function plan(rnd: () => number): Planned {
  const x = rnd();
  const kind: Kind = x < 0.3 ? 'chat' : x < 0.55 ? 'chat-stream' : x < 0.68 ? 'completion' : x < 0.76 ? 'completion-stream' : x < 0.95 ? 'embedding' : 'bad';
  if (kind === 'bad') {
    const b = BAD_INPUTS[Math.floor(rnd() * BAD_INPUTS.length)];
    return { kind, ...b };
  }
  const stream = kind.endsWith('-stream');
  const fault = pickFault(rnd, stream);
  const word = `w${Math.floor(rnd() * 1000)}`;
  let body: Record<string, unknown>;
  let path: string;
  if (kind.startsWith('chat')) {
    path = '/v1/chat/completions';
    body = { model: 'm', messages: [{ role: 'user', content: `hello ${word}` }] };
  } else if (kind.startsWith('completion')) {
    path = '/v1/completions';
    body = { model: 'c', prompt: `complete ${word}` };
  } else {
    path = '/v1/embeddings';
    body = { model: 'e', input: [`embed ${word}`, 'two'] };
  }
  if (stream) Object.assign(body, { stream: true, stream_options: { include_usage: true } });
  if (fault.a || fault.b) body.x_fault = fault;
  return { kind, path, body: JSON.stringify(body), parsedBody: body, headers: {} };
}

interface Tally {
  byClass: Record<string, number>;
  hung: number;
  exactCost: number;
  estimatedCost: number;
  successes: number;
  streamErrors: number;
  maxMs: number;
  errorsByCode: Record<string, number>;
}

describe('soak: 50,000 mixed requests with seeded random faults', function () {
  this.timeout(120_000);
  let a: FakeUpstream;
  let b: FakeUpstream;
  let gw: TestGateway;
  let pool: Pool;

  before(async () => {
    a = await startFakeUpstream('a', behaviorFor('a'));
    b = await startFakeUpstream('b', behaviorFor('b'));
    const models = (p: string) => [
      { name: 'm', ...PRICES[p] },
      { name: 'c', kind: 'completion' as const, ...PRICES[p] },
      { name: 'e', kind: 'embedding' as const, ...PRICES[p] },
    ];
    gw = await startTestGateway({
      server: { log_level: 'error' },
      auth: { keys: [{ hash: hashKey(CLIENT_KEY), name: 'soak', team: 'red', project: 'web' }], admin_key_hashes: [hashKey(ADMIN_KEY)] },
      teams: [{ name: 'red' }],
      // Continuation off: the soak's invariants count each broken stream as an error the client saw (continuation.test.ts covers continuing them).
      routing: {
        strategy: 'priority',
        continuation: 'off',
        max_retries: 1,
        retry_delay_ms: 1,
        max_retry_delay_ms: 5,
        timeout_ms: DEADLINE_MS,
        circuit_breaker: { consecutive_failures: 1000, min_requests: 1000, cooldown_ms: 100 },
      },
      providers: [provider('a', a.url, models('a'), { priority: 1, timeout_ms: PROVIDER_TIMEOUT_MS }), provider('b', b.url, models('b'), { priority: 2, timeout_ms: PROVIDER_TIMEOUT_MS })],
    });
    pool = new Pool(gw.url, { connections: CONCURRENCY, pipelining: 1, keepAliveTimeout: 30_000 });
  });
  after(async () => {
    await pool?.close();
    await gw?.shutdown();
    await a?.close();
    await b?.close();
  });

  async function send(p: Planned, t: Tally): Promise<void> {
    const t0 = Date.now();
    let status: number;
    let headers: Record<string, string | string[] | undefined>;
    let text: string;
    try {
      const res = await pool.request({
        method: 'POST',
        path: p.path,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}`, ...p.headers },
        body: p.body,
        headersTimeout: CLIENT_TIMEOUT_MS,
        bodyTimeout: CLIENT_TIMEOUT_MS,
      });
      status = res.statusCode;
      headers = res.headers;
      text = await res.body.text();
    } catch (err) {
      t.hung++;
      assert.fail(`request ${p.kind} ${p.body.slice(0, 120)} did not settle: ${(err as Error).message}`);
    }
    const ms = Date.now() - t0;
    t.maxMs = Math.max(t.maxMs, ms);
    const cls = `${Math.floor(status / 100)}xx`;
    t.byClass[cls] = (t.byClass[cls] ?? 0) + 1;
    if (status !== 200) {
      const e = assertOpenAIError(JSON.parse(text), `${status} for ${p.kind}`);
      t.errorsByCode[`${status} ${e.code}`] = (t.errorsByCode[`${status} ${e.code}`] ?? 0) + 1;
      return;
    }
    assert.notEqual(p.kind, 'bad', `a bad input succeeded: ${p.body.slice(0, 120)}`);
    t.successes++;
    const prices = PRICES[String(headers['x-gateway-provider'])];
    assert.ok(prices, 'x-gateway-provider names a provider');
    if (p.kind.endsWith('-stream')) {
      const sse = parseSse(text);
      if (sse.error) {
        // Interrupted after the first byte: the gateway estimates usage from what was sent.
        t.streamErrors++;
        t.errorsByCode[`sse ${sse.error.code}`] = (t.errorsByCode[`sse ${sse.error.code}`] ?? 0) + 1;
        t.estimatedCost += costUsd({ prompt_tokens: estimatePromptTokens(p.parsedBody!), completion_tokens: estimateCompletionTokens(sse.content) }, prices);
      } else {
        assert.ok(sse.done && sse.usage, 'a complete stream ends with usage and [DONE]');
        // One unreadable event mid-stream is skipped (and counted), the rest of the answer relayed.
        const skipped = (p.parsedBody?.x_fault as Fault | undefined)?.a === 'invalid-sse-mid' && headers['x-gateway-provider'] === 'a';
        assert.equal(sse.content, skipped ? 'Hello from the upstream.' : 'Hello from the fake upstream.');
        t.exactCost += costUsd(sse.usage!, prices);
      }
      return;
    }
    const body = JSON.parse(text) as { usage: { prompt_tokens: number; completion_tokens?: number }; choices?: unknown[]; data?: unknown[] };
    assert.ok((body.choices ?? body.data)?.length, 'a success has choices or data');
    t.exactCost += costUsd({ prompt_tokens: body.usage.prompt_tokens, completion_tokens: body.usage.completion_tokens ?? 0 }, prices);
  }

  it('no hung request, only successes or OpenAI-shaped errors, counters consistent with what the client saw', async () => {
    const rnd = mulberry32(SEED);
    const planned = Array.from({ length: TOTAL }, () => plan(rnd));
    const t: Tally = { byClass: {}, hung: 0, exactCost: 0, estimatedCost: 0, successes: 0, streamErrors: 0, maxMs: 0, errorsByCode: {} };
    const started = Date.now();
    const cpu0 = process.cpuUsage();
    const rss0 = process.memoryUsage().rss;
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < planned.length) await send(planned[next++], t);
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const summary = {
      requests: TOTAL,
      seconds,
      rps: Math.round(TOTAL / seconds),
      cpu_us_per_request_all_in_process: Math.round((cpu.user + cpu.system) / TOTAL),
      rss_growth_mb: Math.round((process.memoryUsage().rss - rss0) / 2 ** 20),
      max_ms: t.maxMs,
      by_class: t.byClass,
      stream_errors: t.streamErrors,
      errors: t.errorsByCode,
    };
    console.log(`      soak: ${JSON.stringify(summary)}`);

    assert.equal(t.hung, 0);
    assert.ok(t.maxMs < DEADLINE_MS + 1000, `every request settled within its deadline (slowest ${t.maxMs} ms)`);
    assert.equal(
      Object.values(t.byClass).reduce((x, y) => x + y, 0),
      TOTAL,
    );
    assert.ok(t.successes > TOTAL * 0.8, 'most requests succeed (failover hides most faults)');
    assert.ok((t.byClass['5xx'] ?? 0) > 0 && (t.byClass['4xx'] ?? 0) > 0 && t.streamErrors > 0, 'the faults and bad inputs were exercised');

    // Request counter: summed per status class, equal to what the client saw.
    const text = await (await fetch(gw.metricsUrl)).text();
    const sum = (name: string, filter: (line: string) => boolean = () => true) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`${name}{`) && filter(l))
        .reduce((acc, l) => acc + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    for (const cls of ['2xx', '4xx', '5xx']) {
      assert.equal(
        sum('aigw_requests_total', (l) => l.includes(`status_class="${cls}"`)),
        t.byClass[cls] ?? 0,
        `aigw_requests_total{status_class="${cls}"}`,
      );
    }
    assert.equal(sum('aigw_requests_total'), TOTAL, 'aigw_requests_total counts every response');

    // Cost counter: exact where the provider reported usage, estimated where a stream was cut.
    const close = (x: number, y: number, what: string) => assert.ok(Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(y)) + 1e-12, `${what}: ${x} vs ${y}`);
    close(
      sum('aigw_cost_usd_total', (l) => l.includes('estimated="false"')),
      t.exactCost,
      'exact cost',
    );
    close(
      sum('aigw_cost_usd_total', (l) => l.includes('estimated="true"')),
      t.estimatedCost,
      'estimated cost',
    );
    const report = (await (await fetch(`${gw.url}/v1/gateway/spend`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as { totals: { requests: number; cost_usd: number } };
    assert.equal(report.totals.requests, t.successes, 'the spend report counts every success');
    close(report.totals.cost_usd, t.exactCost + t.estimatedCost, 'spend report total');
  });
});
