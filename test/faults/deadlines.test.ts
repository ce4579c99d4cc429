/**
 * Deadlines that match what users wait for (routing.deadlines): a provider that sends no
 * headers or no first token in time is failed over at once, not retried, while a fallback
 * remains; the last candidate gets its whole timeout; a stream that stalls or never ends is
 * closed with the clean error event. Times are scaled down (hundreds of milliseconds).
 */
import assert from 'node:assert/strict';
import { Behavior, FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { metricValue, provider, startTestGateway, TestGateway } from '../helpers/gateway';
import { chatBody, parseSse, post } from './helpers';

interface Rig {
  a: FakeUpstream;
  b: FakeUpstream;
  gw: TestGateway;
  close(): Promise<void>;
}

const DEADLINES = { headers_ms: 300, first_token_ms: 400, between_events_ms: 300, stream_ms: 800 };

/** `a` (priority 1, scripted, 600 ms timeout) and `b` (healthy) serve "m"; `a` alone serves "solo". */
async function rig(aBehavior: Behavior): Promise<Rig> {
  const a = await startFakeUpstream('a', () => aBehavior);
  const b = await startFakeUpstream('b');
  const gw = await startTestGateway({
    auth: { mode: 'none' },
    server: { log_level: 'warn' },
    routing: { strategy: 'priority', retry_delay_ms: 5, max_retries: 2, timeout_ms: 20_000, deadlines: DEADLINES },
    providers: [provider('a', a.url, ['m', 'solo'], { priority: 1, timeout_ms: 600 }), provider('b', b.url, ['m'], { priority: 2 })],
  });
  return {
    a,
    b,
    gw,
    close: async () => {
      await gw.shutdown();
      await a.close();
      await b.close();
    },
  };
}

const chat = (r: Rig, model: string, extra: Record<string, unknown> = {}) => post(r.gw.url, '/v1/chat/completions', chatBody(model, extra));
const attempts = (r: Rig, outcome: string) => metricValue(r.gw.metricsUrl, 'aigw_upstream_attempts_total', { provider: 'a', outcome });

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  const value = await fn();
  return { value, ms: Date.now() - t0 };
}

describe('fault suite: deadlines', function () {
  this.timeout(20_000);
  let r: Rig | undefined;
  afterEach(async () => {
    await r?.close();
    r = undefined;
  });

  it('a silent provider (no headers) is failed over after headers_ms, tried once, not retried until its timeout', async () => {
    r = await rig({ kind: 'hang' });
    const { value: res, ms } = await timed(() => chat(r!, 'm'));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-gateway-provider'), 'b');
    assert.equal(r.a.received.length, 1, 'no retry on the silent provider');
    assert.equal(await attempts(r, 'headers_timeout'), 1);
    // 300 ms deadline (undici's coarse timers play no part: the gateway's own timer aborts it).
    assert.ok(ms < 2_500, `failed over after ${ms} ms`);
  });

  it('a first token later than first_token_ms is failed over (stream headers at once, the first event late)', async () => {
    r = await rig({ kind: 'stream', firstEventDelayMs: 5_000 });
    const { value: res, ms } = await timed(() => chat(r!, 'm', { stream: true }));
    assert.equal(res.status, 200);
    const sse = parseSse(res.text);
    assert.equal(sse.done, true);
    assert.equal(sse.content, 'Hello from the fake upstream.');
    assert.equal(res.headers.get('x-gateway-provider'), 'b');
    assert.equal(r.a.received.length, 1);
    assert.equal(await attempts(r, 'first_token_timeout'), 1);
    assert.ok(ms < 3_000, `failed over after ${ms} ms`);
  });

  it('the last candidate gets its whole timeout (and its retries) before a clean 504', async () => {
    r = await rig({ kind: 'hang' });
    const { value: res, ms } = await timed(() => chat(r!, 'solo'));
    assert.equal(res.status, 504);
    assert.equal(((await JSON.parse(res.text)) as { error: { code: string } }).error.code, 'upstream_timeout');
    assert.equal(r.a.received.length, 3, 'one attempt and two retries, each waiting the provider timeout (600 ms)');
    assert.equal(await attempts(r, 'timeout'), 3);
    assert.ok(ms >= 1_700, `waited ${ms} ms`);
  });

  it('a stream that stalls longer than between_events_ms after its first byte ends with the clean error event', async () => {
    r = await rig({ kind: 'stream', chunks: ['first', 'never'], delayMs: 5_000 });
    // "solo": nobody to continue it (continuation.test.ts continues a stall).
    const { value: res, ms } = await timed(() => chat(r!, 'solo', { stream: true }));
    const sse = parseSse(res.text);
    assert.equal(sse.content, 'first');
    assert.equal(sse.error?.code, 'stream_interrupted');
    assert.ok(ms < 3_000, `ended after ${ms} ms (300 ms stall deadline on undici's ~500 ms timer ticks)`);
    assert.equal(await metricValue(r.gw.metricsUrl, 'aigw_stream_interruptions_total', { provider: 'a' }), 1);
  });

  it('an endless stream is ended after stream_ms with the clean error event', async () => {
    r = await rig({ kind: 'stream', chunks: Array.from({ length: 200 }, (_, i) => `${i} `), delayMs: 50 });
    const { value: res, ms } = await timed(() => chat(r!, 'solo', { stream: true }));
    const sse = parseSse(res.text);
    assert.equal(sse.error?.code, 'stream_interrupted');
    assert.equal(sse.done, false);
    assert.ok(ms >= 700 && ms < 3_000, `ended after ${ms} ms (stream_ms 800)`);
  });
});
