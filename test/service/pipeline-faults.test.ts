/**
 * One pipeline for every inbound API: the same fault cases (a provider 5xx before the first
 * byte, a stream cut by the provider, a client leaving mid-stream, an invalid first event) run
 * through chat, responses and /v1/messages, and each ends with the same provider stats,
 * breaker state, metrics and spend, whichever API the client spoke.
 */
import assert from 'node:assert/strict';
import { hashKey } from '../../service/tenancy/keys';
import { FakeAnthropic, startFakeAnthropic } from '../helpers/fake-anthropic';
import { Behavior, FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { metricValue, provider, startTestGateway, TestGateway } from '../helpers/gateway';

const KEY = 'sk-gw-pipeline-client';
const ADMIN = 'sk-gw-pipeline-admin';

interface Api {
  name: 'chat' | 'responses' | 'messages';
  path: string;
  body: Record<string, unknown>;
  headers: Record<string, string>;
  /** Events of the stream before the text starts (responses: created, in_progress, item and part added). */
  preamble: number;
  /** The API's own error event at the end of a stream the provider broke. */
  errorEvent: RegExp;
}

const APIS: Api[] = [
  {
    name: 'chat',
    path: '/v1/chat/completions',
    body: { model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] },
    headers: { authorization: `Bearer ${KEY}` },
    preamble: 0,
    errorEvent: /data: \{"error":\{"message":"The provider stream was interrupted/,
  },
  {
    name: 'responses',
    path: '/v1/responses',
    body: { model: 'm', stream: true, input: 'hi' },
    headers: { authorization: `Bearer ${KEY}` },
    preamble: 4,
    errorEvent: /event: error\ndata: \{"type":"error","code":"stream_interrupted"/,
  },
  {
    name: 'messages',
    path: '/v1/messages',
    body: { model: 'm', stream: true, max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] },
    headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' },
    preamble: 0,
    errorEvent: /event: error\ndata: \{"type":"error","error":\{"type":"api_error"/,
  },
];

/** What one fault case leaves behind, compared across the APIs. */
interface Outcome {
  clientSaw: 'complete' | 'error_event' | 'left';
  attemptsA: Record<string, number>;
  attemptsB: number;
  circuitA: string;
  errorRateAPositive: boolean;
  interruptions: number;
  clientDisconnects: number;
  costA: { estimated: boolean; positive: boolean };
  costB: { estimated: boolean; positive: boolean };
}

interface Case {
  name: string;
  /** Behaviour of provider a (b always streams a complete answer). */
  a: (api: Api) => Behavior;
  /** The client reads the whole stream, or leaves after its first bytes. */
  leave?: boolean;
  expected: Outcome;
}

const none = { estimated: false, positive: false };
const CASES: Case[] = [
  {
    name: 'a provider 5xx before the first byte: failed over',
    a: () => ({ kind: 'status', status: 500 }),
    expected: {
      clientSaw: 'complete',
      attemptsA: { status_retryable: 1 },
      attemptsB: 1,
      circuitA: 'open',
      errorRateAPositive: true,
      interruptions: 0,
      clientDisconnects: 0,
      costA: none,
      costB: { estimated: false, positive: true },
    },
  },
  {
    name: 'a stream cut by the provider after the first byte: the API error event, the cut attempt billed on an estimate',
    a: (api) => ({ kind: 'stream', cutAfter: api.preamble + 3, delayMs: 20, usage: true }),
    expected: {
      clientSaw: 'error_event',
      attemptsA: { success: 1 },
      attemptsB: 0,
      circuitA: 'open',
      errorRateAPositive: true,
      interruptions: 1,
      clientDisconnects: 0,
      costA: { estimated: true, positive: true },
      costB: none,
    },
  },
  {
    name: 'a client leaving mid-stream: counted, the provider not blamed, billed on an estimate',
    a: () => ({ kind: 'stream', delayMs: 150, usage: true }),
    leave: true,
    expected: {
      clientSaw: 'left',
      attemptsA: { success: 1 },
      attemptsB: 0,
      circuitA: 'closed',
      errorRateAPositive: false,
      interruptions: 0,
      clientDisconnects: 1,
      costA: { estimated: true, positive: true },
      costB: none,
    },
  },
  {
    name: 'an invalid first event: failed over before any byte reached the client',
    a: () => ({ kind: 'stream', invalidAt: 0 }),
    expected: {
      clientSaw: 'complete',
      attemptsA: { invalid_stream: 1 },
      attemptsB: 1,
      circuitA: 'open',
      errorRateAPositive: true,
      interruptions: 0,
      clientDisconnects: 0,
      costA: none,
      costB: { estimated: false, positive: true },
    },
  },
];

async function readStream(res: Response, leave: boolean): Promise<{ text: string }> {
  const reader = res.body!.getReader();
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString('utf8');
    if (leave) {
      await reader.cancel();
      break;
    }
  }
  return { text };
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function costOf(gw: TestGateway, p: string): Promise<{ estimated: boolean; positive: boolean }> {
  const exact = await metricValue(gw.metricsUrl, 'aigw_cost_usd_total', { provider: p, estimated: 'false' });
  const estimated = await metricValue(gw.metricsUrl, 'aigw_cost_usd_total', { provider: p, estimated: 'true' });
  return { estimated: estimated > 0, positive: exact + estimated > 0 };
}

async function providerStatus(gw: TestGateway, name: string): Promise<{ circuit: string; error_rate: number }> {
  const res = await fetch(`${gw.url}/v1/gateway/providers`, { headers: { authorization: `Bearer ${ADMIN}` } });
  const body = (await res.json()) as { data: Array<{ name: string; models: Array<{ model: string; circuit: string; error_rate: number }> }> };
  return body.data.find((p) => p.name === name)!.models.find((m) => m.model === 'm')!;
}

async function observe(gw: TestGateway, api: Api, clientSaw: Outcome['clientSaw']): Promise<Outcome> {
  const attemptsA: Record<string, number> = {};
  for (const outcome of ['success', 'status_retryable', 'invalid_stream', 'client_gone']) {
    const n = await metricValue(gw.metricsUrl, 'aigw_upstream_attempts_total', { provider: 'a', outcome });
    if (n) attemptsA[outcome] = n;
  }
  const a = await providerStatus(gw, 'a');
  return {
    clientSaw,
    attemptsA,
    attemptsB: await metricValue(gw.metricsUrl, 'aigw_upstream_attempts_total', { provider: 'b', outcome: 'success' }),
    circuitA: a.circuit,
    errorRateAPositive: a.error_rate > 0,
    interruptions: await metricValue(gw.metricsUrl, 'aigw_stream_interruptions_total', { provider: 'a' }),
    clientDisconnects: await metricValue(gw.metricsUrl, 'aigw_client_disconnects_total', { endpoint: api.name }),
    costA: await costOf(gw, 'a'),
    costB: await costOf(gw, 'b'),
  };
}

async function runCase(c: Case, api: Api): Promise<Outcome> {
  const a = await startFakeUpstream('a', () => c.a(api));
  const b = await startFakeUpstream('b');
  const gw = await startTestGateway({
    auth: { keys: [{ hash: hashKey(KEY), name: 'app', team: 'web', project: 'site' }], admin_key_hashes: [hashKey(ADMIN)] },
    providers: [provider('a', a.url, ['m']), provider('b', b.url, ['m'])],
    // Continuation off: this table is about what every API records for a broken stream (test/service/continuation.test.ts continues them).
    routing: { strategy: 'priority', max_retries: 0, continuation: 'off', circuit_breaker: { consecutive_failures: 1 } },
  });
  try {
    const res = await fetch(`${gw.url}${api.path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...api.headers }, body: JSON.stringify(api.body) });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-accel-buffering'), 'no', 'every stream asks proxies not to buffer');
    const { text } = await readStream(res, c.leave === true);
    let clientSaw: Outcome['clientSaw'] = c.leave ? 'left' : api.errorEvent.test(text) ? 'error_event' : 'complete';
    if (clientSaw === 'complete') assert.match(text, api.name === 'messages' ? /message_stop/ : api.name === 'responses' ? /response\.completed/ : /\[DONE\]/);
    if (c.leave) await until(async () => a.aborted > 0 && (await metricValue(gw.metricsUrl, 'aigw_client_disconnects_total', { endpoint: api.name })) > 0, 'the upstream abort');
    await until(async () => (await metricValue(gw.metricsUrl, 'aigw_cost_usd_total', {})) > 0, 'the settlement');
    return await observe(gw, api, clientSaw);
  } finally {
    await gw.shutdown();
    await a.close();
    await b.close();
  }
}

describe('one pipeline: the same faults through chat, responses and /v1/messages', () => {
  for (const c of CASES) {
    describe(c.name, () => {
      for (const api of APIS) {
        it(`${api.name}: same stats, breaker, metrics and spend`, async () => {
          assert.deepEqual(await runCase(c, api), c.expected);
        });
      }
    });
  }
});

describe('/v1/messages from a native Anthropic provider, left by the client before message_delta', () => {
  let ant: FakeAnthropic;
  let gw: TestGateway;
  before(async () => {
    ant = await startFakeAnthropic(() => ({ kind: 'answer', text: ['One', ' two', ' three', ' four', ' five', ' six'], delayMs: 150 }));
    gw = await startTestGateway({
      auth: { keys: [{ hash: hashKey(KEY), name: 'app', team: 'web', project: 'site' }], admin_key_hashes: [hashKey(ADMIN)] },
      providers: [{ ...provider('ant', ant.url, [{ name: 'm', upstream_name: 'claude-x', input_per_million: 1, output_per_million: 1_000_000 }]), type: 'anthropic', api_key: ant.apiKey }],
    });
  });
  after(async () => {
    await gw.shutdown();
    await ant.close();
  });

  it('is billed on the estimate of what was generated (marked estimated), not the running count of 1 token in message_start', async () => {
    const res = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': KEY },
      body: JSON.stringify({ model: 'm', stream: true, max_tokens: 50, messages: [{ role: 'user', content: 'count' }] }),
    });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('content_block_delta')) text += Buffer.from((await reader.read()).value!).toString('utf8');
    await reader.cancel();
    await until(async () => (await metricValue(gw.metricsUrl, 'aigw_cost_usd_total', { provider: 'ant', estimated: 'true' })) > 0, 'the estimated settlement');
    assert.equal(await metricValue(gw.metricsUrl, 'aigw_cost_usd_total', { provider: 'ant', estimated: 'false' }), 0);
    assert.equal(await metricValue(gw.metricsUrl, 'aigw_client_disconnects_total', { endpoint: 'messages' }), 1);
    // output_per_million = 1e6: the output part of the cost is the output token count in dollars.
    const out = await metricValue(gw.metricsUrl, 'aigw_tokens_total', { provider: 'ant', direction: 'output' });
    assert.ok(out >= 1, `output tokens ${out}`);
    const received = (text.match(/"text_delta","text":"([^"]*)"/g) ?? []).length;
    assert.ok(out >= received, `billed ${out} output tokens for ${received} deltas the client received`);
  });
});
