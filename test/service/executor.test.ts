/**
 * The executor's attempts, retries, backoff, failover and deadline, with a fake upstream
 * client and the injected clock and sleep: no sockets and no wall-clock bounds. Time moves
 * only when the fake client or the fake sleep says so.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseConfig } from '../../service/config/schema';
import { createMetrics } from '../../service/metrics/metrics';
import { buildCatalog, Candidate } from '../../service/routing/catalog';
import { CircuitBreakers } from '../../service/routing/circuit-breaker';
import { StatsTracker } from '../../service/routing/provider-stats';
import type { UpstreamClient, UpstreamResponse } from '../../service/upstream/client';
import type { BufferedResponse } from '../../service/upstream/buffered-answer';
import { ExecuteInput, ExecuteResult, Executor } from '../../service/upstream/executor';

type Reply = { status: number; headers?: Record<string, string>; body?: string; chunks?: string[]; takesMs?: number } | { error: NodeJS.ErrnoException; takesMs?: number };

function config(routing: Record<string, unknown> = {}) {
  return parseConfig({
    auth: { mode: 'none' },
    routing: { strategy: 'priority', max_retries: 2, retry_delay_ms: 100, max_retry_delay_ms: 1000, ...routing },
    providers: [
      { name: 'a', base_url: 'http://127.0.0.1:1/v1', priority: 1, models: [{ name: 'm' }] },
      { name: 'b', base_url: 'http://127.0.0.1:2/v1', priority: 2, models: [{ name: 'm' }] },
    ],
  });
}

/** A fake clock, a sleep that advances it, and a client that answers from a script per provider. */
function harness(script: Record<string, Reply[]>, routing: Record<string, unknown> = {}) {
  const cfg = config(routing);
  let clock = 1_000_000;
  const now = () => clock;
  const sleeps: number[] = [];
  const sent: string[] = [];
  const client = {
    async send(call: { candidate: Candidate }): Promise<UpstreamResponse> {
      const name = call.candidate.provider.name;
      sent.push(name);
      const reply = script[name]?.shift() ?? { status: 500, body: '{}' };
      clock += reply.takesMs ?? 10;
      if ('error' in reply) throw reply.error;
      const body = Readable.from((reply.chunks ?? [reply.body ?? '']).map((c) => Buffer.from(c)));
      return { statusCode: reply.status, headers: { 'content-type': reply.chunks ? 'text/event-stream' : 'application/json', ...reply.headers }, body } as unknown as UpstreamResponse;
    },
    /** The same answer, read whole (as the client's dispatch does for a non-streaming call). */
    async sendBuffered(call: { candidate: Candidate }, read: { onHeaders?: () => void }): Promise<BufferedResponse> {
      const res = await (client as unknown as { send(c: unknown): Promise<UpstreamResponse> }).send(call);
      read.onHeaders?.();
      const chunks: Buffer[] = [];
      for await (const c of res.body) chunks.push(c as Buffer);
      return { statusCode: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) };
    },
  } as unknown as UpstreamClient;
  const metrics = createMetrics();
  const cb = cfg.routing.circuit_breaker;
  const breakers = new CircuitBreakers(
    { consecutiveFailures: cb.consecutive_failures, errorRateThreshold: cb.error_rate_threshold, windowMs: cb.window_ms, minRequests: cb.min_requests, cooldownMs: cb.cooldown_ms },
    now,
  );
  const executor = new Executor({
    config: cfg,
    client,
    breakers,
    stats: new StatsTracker(cfg.routing.ewma_alpha, now),
    metrics,
    admitProvider: async () => true,
    now,
    random: () => 0.5,
    sleep: async (ms) => {
      sleeps.push(ms);
      clock += ms;
    },
  });
  const plan = buildCatalog(cfg)
    .resolveFor('m', 'chat')!
    .candidates.slice()
    .sort((x, y) => x.provider.name.localeCompare(y.provider.name));
  const run = (input: Partial<ExecuteInput> = {}): Promise<ExecuteResult> =>
    executor.execute({
      model: 'm',
      endpoint: 'chat',
      plan,
      bodyFor: () => Buffer.from('{"model":"m","messages":[]}'),
      stream: false,
      requestId: 'r',
      clientSignal: new AbortController().signal,
      label: 'chat',
      startedAt: clock,
      deadline: clock + 30_000,
      ...input,
    });
  return { run, sleeps, sent, now, metrics };
}

const OK = { status: 200, body: '{"id":"x","choices":[]}' };

describe('executor with an injected clock and sleep', () => {
  it('retries a retryable status with exponential backoff (random 0.5 of base * 2^n), then succeeds on the same provider', async () => {
    const h = harness({ a: [{ status: 503, body: '{}' }, { status: 502, body: '{}' }, OK] });
    const r = await h.run();
    assert.equal(r.ok, true);
    assert.equal(r.attempts, 3);
    assert.deepEqual(h.sent, ['a', 'a', 'a']);
    assert.deepEqual(h.sleeps, [50, 100]);
  });

  it('after max_retries it fails over to the next provider without sleeping in between', async () => {
    const h = harness({ a: [{ status: 503 }, { status: 503 }, { status: 503 }], b: [OK] });
    const r = await h.run();
    assert.ok(r.ok && r.candidate.provider.name === 'b');
    assert.deepEqual(h.sent, ['a', 'a', 'a', 'b']);
    assert.deepEqual(h.sleeps, [50, 100]);
  });

  it('honours Retry-After under the cap, and moves on at once when it is above the cap', async () => {
    const under = harness({ a: [{ status: 429, headers: { 'retry-after': '2' } }, OK] }, { retry_after_cap_ms: 5000 });
    assert.equal((await under.run()).ok, true);
    assert.deepEqual(under.sleeps, [2000]);
    // An HTTP-date Retry-After is read against the injected clock, not the machine's:
    // the answer comes at 1_000_010 (the attempt took 10 ms), the date says 1_004_000.
    const dated = harness({ a: [{ status: 503, headers: { 'retry-after': new Date(1_004_000).toUTCString() } }, OK] }, { retry_after_cap_ms: 5000 });
    assert.equal((await dated.run()).ok, true);
    assert.deepEqual(dated.sleeps, [3990]);
    const over = harness({ a: [{ status: 429, headers: { 'retry-after': '60' } }], b: [OK] }, { retry_after_cap_ms: 5000 });
    const r = await over.run();
    assert.ok(r.ok && r.candidate.provider.name === 'b');
    assert.deepEqual(over.sleeps, []);
  });

  it('a backoff that would pass the deadline is not slept: the request ends as a 504 timeout', async () => {
    const h = harness({ a: [{ status: 503, takesMs: 980 }] }, { fallback: false });
    const r = await h.run({ deadline: h.now() + 1000 });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.error.status, 504);
    assert.deepEqual(h.sent, ['a']);
    assert.deepEqual(h.sleeps, []);
  });

  it('no attempt starts once the clock has reached the deadline (the next provider is not tried)', async () => {
    const h = harness(
      {
        a: [
          { status: 503, takesMs: 400 },
          { status: 503, takesMs: 400 },
        ],
        b: [OK],
      },
      { max_retries: 1 },
    );
    const r = await h.run({ deadline: h.now() + 850 });
    // a: 400 ms, sleep 50 ms, a: 400 ms -> 850 ms used: b never sees the request.
    assert.deepEqual(h.sent, ['a', 'a']);
    assert.equal(!r.ok && r.error.status, 504);
  });

  it('a non-retryable client error (400) is relayed at once: no retry, no failover, no sleep', async () => {
    const h = harness({ a: [{ status: 400, body: '{"error":{"message":"bad","type":"invalid_request_error","code":"x","param":null}}' }], b: [OK] });
    const r = await h.run();
    assert.equal(!r.ok && r.error.status, 400);
    assert.deepEqual(h.sent, ['a']);
    assert.deepEqual(h.sleeps, []);
  });

  it('a network error is retried like a 5xx; a stream with an invalid first event fails over before any byte reaches the client', async () => {
    const reset = Object.assign(new Error('reset'), { code: 'ECONNRESET' });
    const net = harness({ a: [{ error: reset }, OK] });
    assert.equal((await net.run()).ok, true);
    assert.deepEqual(net.sleeps, [50]);
    const bad = harness({ a: [{ status: 200, chunks: ['data: {not json\n\n'] }], b: [{ status: 200, chunks: ['data: {"choices":[]}\n\n', 'data: [DONE]\n\n'] }] });
    const r = await bad.run({ stream: true });
    assert.ok(r.ok && r.candidate.provider.name === 'b' && r.stream);
    assert.match(r.stream.first.toString(), /^data: \{"choices":\[\]\}/);
    r.stream.done();
  });

  it("a stream it returns holds nothing of the attempt's input: its bodyFor (and the upstream bodies it made) can be collected while the stream is open", async () => {
    const h = harness({ a: [{ status: 200, chunks: ['data: {"choices":[]}\n\n', 'data: [DONE]\n\n'] }] });
    let weak!: WeakRef<() => Buffer>;
    const r = await (() => {
      const bodyFor = () => Buffer.from('{"model":"m","messages":[]}');
      weak = new WeakRef(bodyFor);
      return h.run({ stream: true, bodyFor });
    })();
    assert.ok(r.ok && r.stream);
    await new Promise((resolve) => setImmediate(resolve)); // a WeakRef's target lives to the end of the job that made it
    fullGc();
    assert.equal(weak.deref(), undefined, 'the open stream still holds the attempt input');
    r.stream.finish('completed');
  });
});

/** A full collection (the flag set at run time: mocha runs without --expose-gc). */
function fullGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}
