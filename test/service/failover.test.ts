/**
 * Retries, failover and the circuit breaker, against fake upstreams scripted to fail.
 * Each case asserts what the client got, the attempts, the provider chosen and the metrics.
 */
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { GatewayConfigInput } from '../../service/config/schema';
import { Behavior, FakeUpstream, refusedUrl, startFakeUpstream } from '../helpers/fake-upstream';
import { metricValue, provider, startTestGateway, TestGateway } from '../helpers/gateway';

const ADMIN_KEY = 'sk-gw-admin-for-tests';
const ADMIN_HASH = 'sha256:' + require('node:crypto').createHash('sha256').update(ADMIN_KEY).digest('hex');

interface Rig {
  a: FakeUpstream;
  b: FakeUpstream;
  gw: TestGateway;
  client: OpenAI;
  chat: (extra?: Record<string, unknown>) => Promise<{ content: string; provider: string | null; attempts: string | null }>;
  close: () => Promise<void>;
}

/** Two fake providers serving model "m", `a` first by priority, and a gateway in front. */
async function rig(aBehavior: (n: number) => Behavior, opts: { aUrl?: string; routing?: GatewayConfigInput['routing']; aTimeout?: number; aExtra?: Record<string, unknown> } = {}): Promise<Rig> {
  const a = await startFakeUpstream('a', (_req, n) => aBehavior(n));
  const b = await startFakeUpstream('b');
  const gw = await startTestGateway({
    auth: { mode: 'none', admin_key_hashes: [ADMIN_HASH] },
    routing: { strategy: 'priority', retry_delay_ms: 10, max_retries: 2, ...opts.routing },
    providers: [provider('a', opts.aUrl ?? a.url, ['m'], { priority: 1, timeout_ms: opts.aTimeout ?? 2000, ...opts.aExtra }), provider('b', b.url, ['m'], { priority: 2 })],
  });
  const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 });
  const chat = async (extra: Record<string, unknown> = {}) => {
    const { data, response } = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], ...extra } as never).withResponse();
    return { content: (data as OpenAI.ChatCompletion).choices[0].message.content ?? '', provider: response.headers.get('x-gateway-provider'), attempts: response.headers.get('x-gateway-attempts') };
  };
  return {
    a,
    b,
    gw,
    client,
    chat,
    close: async () => {
      await gw.shutdown();
      await a.close();
      await b.close();
    },
  };
}

const metric = (r: Rig, name: string, labels: Record<string, string>) => metricValue(r.gw.metricsUrl, name, labels);

describe('routing engine: retries, failover, circuit breaker', () => {
  let r: Rig | undefined;
  afterEach(async () => {
    await r?.close();
    r = undefined;
  });

  it('fails twice with 503 then succeeds: retried on the same provider, 3 attempts', async () => {
    r = await rig((n) => (n <= 2 ? { kind: 'status', status: 503 } : { kind: 'ok' }));
    const res = await r.chat();
    assert.deepEqual([res.content, res.provider, res.attempts], ['Hello from a', 'a', '3']);
    assert.equal(await metric(r, 'aigw_retries_total', { provider: 'a', reason: 'status_retryable' }), 2);
    assert.equal(r.b.received.length, 0);
  });

  it('connection refused: fails over to the next provider', async () => {
    r = await rig(() => ({ kind: 'ok' }), { aUrl: await refusedUrl(), routing: { max_retries: 1 } });
    const res = await r.chat();
    assert.deepEqual([res.provider, res.attempts], ['b', '3']);
    assert.equal(await metric(r, 'aigw_failovers_total', { from_provider: 'a', to_provider: 'b', reason: 'refused' }), 1);
    assert.equal(await metric(r, 'aigw_upstream_attempts_total', { provider: 'a', outcome: 'refused' }), 2);
  });

  it('a provider that hangs past its timeout: fails over', async () => {
    r = await rig(() => ({ kind: 'hang' }), { aTimeout: 200, routing: { max_retries: 0 } });
    const t0 = Date.now();
    const res = await r.chat();
    assert.equal(res.provider, 'b');
    assert.ok(Date.now() - t0 < 1500, 'did not wait past the per-attempt timeout');
    assert.equal(await metric(r, 'aigw_upstream_attempts_total', { provider: 'a', outcome: 'timeout' }), 1);
  });

  it('429 with Retry-After under the cap: waits as asked, then retries the same provider', async () => {
    r = await rig((n) => (n === 1 ? { kind: 'status', status: 429, headers: { 'retry-after': '1' } } : { kind: 'ok' }));
    const t0 = Date.now();
    const res = await r.chat();
    assert.deepEqual([res.provider, res.attempts], ['a', '2']);
    assert.ok(Date.now() - t0 >= 950, 'honoured Retry-After: 1');
  });

  it('429 with Retry-After over the cap: fails over at once instead of waiting', async () => {
    r = await rig(() => ({ kind: 'status', status: 429, headers: { 'retry-after': '120' } }), { routing: { retry_after_cap_ms: 5000 } });
    const t0 = Date.now();
    const res = await r.chat();
    assert.deepEqual([res.provider, res.attempts], ['b', '2']);
    assert.ok(Date.now() - t0 < 2000);
  });

  it('401 from a provider: fails over, marks it unhealthy, and the client never sees the 401', async () => {
    r = await rig(() => ({ kind: 'status', status: 401, body: { error: { message: 'Incorrect API key provided: sk-prov***', type: 'invalid_request_error', code: 'invalid_api_key' } } }));
    const first = await r.chat();
    assert.deepEqual([first.provider, first.attempts], ['b', '2']);
    const second = await r.chat();
    assert.deepEqual([second.provider, second.attempts], ['b', '1'], 'the unhealthy provider is skipped');
    assert.equal(r.a.received.length, 1);
    assert.equal(await metric(r, 'aigw_provider_unhealthy', { provider: 'a' }), 1);
    const status = (await (await fetch(`${r.gw.url}/v1/gateway/providers`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as {
      data: Array<{ name: string; models: Array<{ model: string; circuit: string; healthy: boolean }> }>;
    };
    const a = status.data.find((p) => p.name === 'a')!.models.find((m) => m.model === 'm')!;
    assert.deepEqual([a.circuit, a.healthy], ['open', false]);
  });

  it('every provider rejecting the gateway key: 502 that blames the gateway config, not the client', async () => {
    r = await rig(() => ({ kind: 'status', status: 403 }));
    r.b.setBehavior(() => ({ kind: 'status', status: 401 }));
    await assert.rejects(r.chat(), (err: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(err.status, 502);
      assert.equal(err.code, 'upstream_auth_failed');
      assert.match(err.message, /not your key/);
      return true;
    });
  });

  it('invalid JSON from a provider: fails over', async () => {
    r = await rig(() => ({ kind: 'invalid-json' }));
    assert.equal((await r.chat()).provider, 'b');
    assert.equal(await metric(r, 'aigw_upstream_attempts_total', { provider: 'a', outcome: 'invalid_json' }), 1);
  });

  it('a 400 from the provider is the client request: relayed as is, no failover', async () => {
    r = await rig(() => ({ kind: 'status', status: 400, body: { error: { message: "Invalid value for 'temperature'", type: 'invalid_request_error', code: 'invalid_value', param: 'temperature' } } }));
    await assert.rejects(r.chat({ temperature: 9 }), (err: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(err.status, 400);
      assert.equal(err.param, 'temperature');
      return true;
    });
    assert.equal(r.b.received.length, 0);
  });

  it('the circuit opens after consecutive failures; open circuits are skipped without an attempt', async () => {
    r = await rig(() => ({ kind: 'status', status: 500 }), { routing: { max_retries: 0, circuit_breaker: { consecutive_failures: 3, cooldown_ms: 60_000 } } });
    for (let i = 0; i < 3; i++) assert.equal((await r.chat()).provider, 'b');
    const res = await r.chat();
    assert.deepEqual([res.provider, res.attempts], ['b', '1']);
    assert.equal(r.a.received.length, 3, 'no fourth attempt on the open circuit');
    assert.equal(await metric(r, 'aigw_circuit_state', { provider: 'a', model: 'm' }), 2);
    assert.equal(await metric(r, 'aigw_circuit_transitions_total', { provider: 'a', from: 'closed', to: 'open' }), 1);
  });

  it('after the cooldown a probe goes through (half-open) and success closes the circuit', async () => {
    let failing = true;
    r = await rig(() => (failing ? { kind: 'status', status: 500 } : { kind: 'ok' }), { routing: { max_retries: 0, circuit_breaker: { consecutive_failures: 2, cooldown_ms: 300 } } });
    await r.chat();
    await r.chat();
    assert.equal(await metric(r, 'aigw_circuit_state', { provider: 'a', model: 'm' }), 2);
    failing = false;
    await new Promise((res) => setTimeout(res, 350));
    assert.equal((await r.chat()).provider, 'a');
    assert.equal(await metric(r, 'aigw_circuit_state', { provider: 'a', model: 'm' }), 0);
    assert.equal(await metric(r, 'aigw_circuit_transitions_total', { provider: 'a', from: 'half-open', to: 'closed' }), 1);
  });

  it('all providers failing: 502 in the OpenAI shape with the attempt count', async () => {
    r = await rig(() => ({ kind: 'status', status: 500 }), { routing: { max_retries: 1 } });
    r.b.setBehavior(() => ({ kind: 'status', status: 502 }));
    const res = await fetch(`${r.gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] }),
    });
    assert.equal(res.status, 502);
    assert.equal(res.headers.get('x-gateway-attempts'), '4');
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'upstream_unavailable');
    assert.doesNotMatch(body.error.message, /127\.0\.0\.1/);
  });

  it('the overall deadline bounds retries and failovers together: 504', async () => {
    r = await rig(() => ({ kind: 'hang' }), { aTimeout: 300, routing: { max_retries: 5, timeout_ms: 700 } });
    r.b.setBehavior(() => ({ kind: 'hang' }));
    const t0 = Date.now();
    await assert.rejects(r.chat(), (err: InstanceType<typeof OpenAI.APIError>) => err.status === 504);
    assert.ok(Date.now() - t0 < 1500, `bounded by the 700 ms deadline, took ${Date.now() - t0} ms`);
  });

  it('streaming: a provider failing before the first byte is failed over', async () => {
    r = await rig(() => ({ kind: 'reset' }), { routing: { max_retries: 0 } });
    const { data: stream, response } = await r.client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true }).withResponse();
    let text = '';
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    assert.equal(text, 'Hello from the fake upstream.');
    assert.equal(response.headers.get('x-gateway-provider'), 'b');
    assert.equal(response.headers.get('x-gateway-attempts'), '2');
  });

  it('streaming: an empty 200 stream counts as a failure and is failed over', async () => {
    r = await rig(() => ({ kind: 'empty-stream' }), { routing: { max_retries: 0 } });
    const stream = await r.client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true });
    let n = 0;
    for await (const _c of stream) n++;
    assert.ok(n > 0);
    assert.equal(r.b.received.length, 1);
  });

  it('streaming: a stream cut after the first byte ends with an SSE error event and a clean close, and is counted (continuation off)', async () => {
    r = await rig(() => ({ kind: 'stream', chunks: ['one', 'two', 'three', 'four'], cutAfter: 2, delayMs: 20 }), { routing: { continuation: 'off' } });
    const stream = await r.client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true });
    let text = '';
    await assert.rejects(
      (async () => {
        for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
      })(),
      (err: Error) => /interrupted/.test(err.message),
    );
    assert.equal(text, 'onetwo');
    assert.equal(r.b.received.length, 0, 'no failover after the first byte');
    assert.equal(await metric(r, 'aigw_stream_interruptions_total', { provider: 'a' }), 1);
  });

  it('fallback: false tries only the first provider of the plan', async () => {
    r = await rig(() => ({ kind: 'status', status: 500 }), { routing: { fallback: false, max_retries: 0 } });
    await assert.rejects(r.chat(), (err: InstanceType<typeof OpenAI.APIError>) => err.status === 502);
    assert.equal(r.b.received.length, 0);
  });

  it("a provider's own request quota: once spent, the plan moves on to the next provider", async () => {
    r = await rig(() => ({ kind: 'ok' }), { aExtra: { rate_limit: { requests_per_minute: 2 } } });
    const served = [];
    for (let i = 0; i < 4; i++) served.push((await r.chat()).provider);
    assert.deepEqual(served, ['a', 'a', 'b', 'b']);
    assert.equal(await metric(r, 'aigw_upstream_attempts_total', { provider: 'a', outcome: 'provider_rate_limited' }), 2);
  });

  it('the status endpoint needs the admin key', async () => {
    r = await rig(() => ({ kind: 'ok' }));
    const res = await fetch(`${r.gw.url}/v1/gateway/providers`);
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'admin_key_required');
  });

  it('an unknown admin path: 404 to the admin key, 403 to anyone else (never "invalid API key")', async () => {
    r = await rig(() => ({ kind: 'ok' }));
    const admin = await fetch(`${r.gw.url}/v1/gateway/nope`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    assert.equal(admin.status, 404);
    assert.equal(((await admin.json()) as { error: { code: string } }).error.code, 'unknown_url');
    const anon = await fetch(`${r.gw.url}/v1/gateway/nope`, { method: 'POST' });
    assert.equal(anon.status, 403);
  });
});

describe('routing engine: weighted 95/5 through the gateway', () => {
  it('2,000 requests split within a 5-sigma band of 95/5', async function () {
    this.timeout(60_000);
    const a = await startFakeUpstream('a');
    const b = await startFakeUpstream('b');
    const gw = await startTestGateway({
      auth: { mode: 'none' },
      server: { log_level: 'warn' },
      providers: [provider('a', a.url, ['m']), provider('b', b.url, ['m'])],
      models: { m: { strategy: 'weighted', weights: { a: 95, b: 5 } } },
    });
    try {
      const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] });
      const counts: Record<string, number> = {};
      for (let batch = 0; batch < 40; batch++) {
        const res = await Promise.all(Array.from({ length: 50 }, () => fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })));
        for (const x of res) {
          await x.arrayBuffer();
          const p = x.headers.get('x-gateway-provider') ?? 'none';
          counts[p] = (counts[p] ?? 0) + 1;
        }
      }
      // Binomial(2000, 0.05): mean 100, sd 9.75; 5 sd -> [51, 149], false alarm ~1 in 1.7 million
      assert.equal((counts.a ?? 0) + (counts.b ?? 0), 2000);
      assert.ok(counts.b >= 51 && counts.b <= 149, `b served ${counts.b} of 2000`);
    } finally {
      await gw.shutdown();
      await a.close();
      await b.close();
    }
  });
});
