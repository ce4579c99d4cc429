/**
 * Upstream faults end to end, beyond the scripted failures of test/service/failover.test.ts:
 * slow-drip streams, invalid SSE before and after the first byte, a huge body, a provider
 * host that does not resolve, a slow first byte. Each ends in a success from another
 * provider or a clear OpenAI-shaped error, never a hang.
 */
import assert from 'node:assert/strict';
import { Behavior, FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { metricValue, provider, startTestGateway, TestGateway } from '../helpers/gateway';
import { assertOpenAIError, chatBody, parseSse, post } from './helpers';

const DNS_FAIL_URL = 'http://nonexistent.invalid/v1';

interface Rig {
  a: FakeUpstream;
  b: FakeUpstream;
  gw: TestGateway;
  close(): Promise<void>;
}

/**
 * Provider `a` (priority 1, scripted) and `b` (priority 2, healthy) serve model "m";
 * `a` alone serves model "solo". `aUrl` replaces a's address (DNS failure).
 */
async function rig(aBehavior: (stream: boolean) => Behavior, opts: { aTimeoutMs?: number; aUrl?: string } = {}): Promise<Rig> {
  const a = await startFakeUpstream('a', (req) => aBehavior(req.body.stream === true));
  const b = await startFakeUpstream('b');
  const gw = await startTestGateway({
    auth: { mode: 'none' },
    server: { log_level: 'warn' },
    routing: { strategy: 'priority', retry_delay_ms: 5, max_retries: 1, timeout_ms: 10_000 },
    providers: [provider('a', opts.aUrl ?? a.url, ['m', 'solo'], { priority: 1, timeout_ms: opts.aTimeoutMs ?? 2000 }), provider('b', b.url, ['m'], { priority: 2 })],
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
const attempts = (r: Rig, p: string, outcome: string) => metricValue(r.gw.metricsUrl, 'aigw_upstream_attempts_total', { provider: p, outcome });

describe('fault suite: upstream faults end to end', function () {
  this.timeout(20_000);
  let r: Rig | undefined;
  afterEach(async () => {
    await r?.close();
    r = undefined;
  });

  it('slow-drip stream, each chunk within the idle timeout: completes although the whole stream outlasts the timeout', async () => {
    const chunks = ['s', 'l', 'o', 'w', ' ', 'd', 'r', 'i', 'p'];
    r = await rig(() => ({ kind: 'stream', chunks, delayMs: 120 }), { aTimeoutMs: 400 });
    const t0 = Date.now();
    const res = await chat(r, 'm', { stream: true });
    assert.ok(Date.now() - t0 > 400 * 2, 'the stream took longer than the per-chunk timeout');
    assert.equal(res.status, 200);
    const sse = parseSse(res.text);
    assert.deepEqual([sse.content, sse.done, sse.error], ['slow drip', true, undefined]);
    assert.equal(res.headers.get('x-gateway-provider'), 'a');
    assert.equal(await metricValue(r.gw.metricsUrl, 'aigw_stream_interruptions_total', { provider: 'a' }), 0);
  });

  it('slow-drip stream slower than the idle timeout: clean SSE error after the first byte, counted, no hang', async () => {
    r = await rig(() => ({ kind: 'stream', chunks: ['first', 'never'], delayMs: 3000 }), { aTimeoutMs: 300 });
    const t0 = Date.now();
    // "solo": no other provider to continue the stream (test/service/continuation.test.ts continues one).
    const res = await chat(r, 'solo', { stream: true });
    const took = Date.now() - t0;
    assert.equal(res.status, 200);
    const sse = parseSse(res.text);
    assert.equal(sse.content, 'first');
    assert.equal(sse.error?.code, 'stream_interrupted');
    assert.equal(sse.done, false);
    // undici runs its header and body timeouts on "fast timers" that tick every ~500 ms
    // (lib/util/timers.js, TICK_MS), so a 300 ms idle timeout fires after 300 to ~1,300 ms:
    // well before the upstream's next chunk at 3,000 ms.
    assert.ok(took < 2000, `ended by the idle timeout (300 ms, on undici's ~500 ms timer ticks), took ${took} ms`);
    assert.equal(r.b.received.length, 0, 'no failover after the first byte');
    assert.equal(await metricValue(r.gw.metricsUrl, 'aigw_stream_interruptions_total', { provider: 'a' }), 1);
  });

  it('one invalid SSE event mid-stream: skipped and counted, the rest of the answer relayed', async () => {
    r = await rig(() => ({ kind: 'stream', chunks: ['one', 'two', 'three', 'four'], invalidAt: 2 }));
    const res = await chat(r, 'solo', { stream: true });
    assert.equal(res.status, 200);
    const sse = parseSse(res.text);
    assert.equal(sse.content, 'onetwofour');
    assert.equal(sse.error, undefined);
    assert.equal(sse.done, true);
    assert.equal(await metricValue(r.gw.metricsUrl, 'aigw_stream_events_dropped_total', { provider: 'a' }), 1);
    assert.equal(await metricValue(r.gw.metricsUrl, 'aigw_stream_interruptions_total', { provider: 'a' }), 0);
  });

  it('invalid SSE as the first event (before any byte reached the client): fails over', async () => {
    r = await rig(() => ({ kind: 'stream', invalidAt: 0 }));
    const res = await chat(r, 'm', { stream: true });
    assert.equal(res.status, 200);
    const sse = parseSse(res.text);
    assert.deepEqual([sse.content, sse.done, sse.error], ['Hello from the fake upstream.', true, undefined]);
    assert.equal(res.headers.get('x-gateway-provider'), 'b');
    assert.equal(await attempts(r, 'a', 'invalid_stream'), 1);
    assert.equal(await metricValue(r.gw.metricsUrl, 'aigw_stream_interruptions_total', {}), 0);
  });

  it('huge upstream body (40 MiB, over the 32 MiB cap): fails over; alone: 502; memory stays bounded', async () => {
    r = await rig(() => ({ kind: 'huge', bytes: 40 * 1024 * 1024 }));
    const rss0 = process.memoryUsage().rss;
    const [viaB, alone] = await Promise.all([chat(r, 'm'), chat(r, 'solo')]);
    assert.equal(viaB.status, 200);
    assert.equal(viaB.headers.get('x-gateway-provider'), 'b');
    assert.equal(alone.status, 502);
    assert.equal(assertOpenAIError(alone.json).code, 'upstream_unavailable');
    assert.equal(await attempts(r, 'a', 'too_large'), 2, 'each huge body is one non-retryable attempt');
    const grewMb = (process.memoryUsage().rss - rss0) / 2 ** 20;
    assert.ok(grewMb < 200, `RSS grew by ${grewMb.toFixed(0)} MiB for two 40 MiB bodies (cap 32 MiB each)`);
  });

  it('DNS failure for a provider host: fails over; alone: 502 in the OpenAI shape', async () => {
    r = await rig(() => ({ kind: 'ok' }), { aUrl: DNS_FAIL_URL });
    const t0 = Date.now();
    const viaB = await chat(r, 'm');
    assert.equal(viaB.status, 200);
    assert.equal(viaB.headers.get('x-gateway-provider'), 'b');
    const alone = await chat(r, 'solo');
    assert.equal(alone.status, 502);
    const e = assertOpenAIError(alone.json);
    assert.equal(e.code, 'upstream_unavailable');
    assert.doesNotMatch(e.message, /nonexistent\.invalid/, 'the provider host is not shown to the client');
    assert.ok(Date.now() - t0 < 5000, 'no hang on DNS failure');
    assert.ok((await attempts(r, 'a', 'dns')) >= 2);
  });

  it('slow first byte past the timeout, streaming: fails over before the first byte', async () => {
    r = await rig(() => ({ kind: 'stream', firstByteDelayMs: 3000 }), { aTimeoutMs: 250 });
    const t0 = Date.now();
    const res = await chat(r, 'm', { stream: true });
    assert.equal(res.status, 200);
    assert.equal(parseSse(res.text).content, 'Hello from the fake upstream.');
    assert.equal(res.headers.get('x-gateway-provider'), 'b');
    assert.ok(Date.now() - t0 < 1500, `bounded by the 250 ms attempt timeout (x2 attempts), took ${Date.now() - t0} ms`);
    assert.equal(await attempts(r, 'a', 'timeout'), 2);
  });

  it('slow first byte past the timeout, non-streaming: fails over, and the slow attempts are aborted', async () => {
    r = await rig(() => ({ kind: 'ok', delayMs: 3000 }), { aTimeoutMs: 250 });
    const res = await chat(r, 'm');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-gateway-provider'), 'b');
    assert.equal(await attempts(r, 'a', 'timeout'), 2);
    assert.equal(r.a.aborted, 2, 'the gateway closed the timed-out upstream requests');
  });
});
