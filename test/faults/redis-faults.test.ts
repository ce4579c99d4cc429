/**
 * Redis faults under live gateway traffic (auth, rate limits, budget, cache and spend all on
 * Redis): killed and restarted, and hung (SIGSTOP). No client request fails because of it, and
 * a hung Redis costs each request at most about redis.command_timeout_ms per Redis round trip.
 */
import assert from 'node:assert/strict';
import { hashKey } from '../../service/tenancy/keys';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { metricValue, provider, startTestGateway, TestGateway } from '../helpers/gateway';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { chatBody, post, waitFor } from './helpers';

const CLIENT_KEY = 'sk-gw-redis-faults-client';
const ADMIN_KEY = 'sk-gw-redis-faults-admin';
const COMMAND_TIMEOUT_MS = 100;

interface Outcome {
  status: number;
  ms: number;
  startedAt: number;
  code?: string;
}

describe('fault suite: Redis faults under traffic', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let upstream: FakeUpstream;
  let gw: TestGateway;

  beforeEach(async () => {
    redis = await startRedis();
    upstream = await startFakeUpstream('up');
    gw = await startTestGateway({
      server: { log_level: 'warn' },
      auth: {
        keys: [{ hash: hashKey(CLIENT_KEY), name: 'ci', team: 'red', project: 'web', rate_limit: { requests_per_minute: 100_000, tokens_per_minute: 10_000_000 } }],
        admin_key_hashes: [hashKey(ADMIN_KEY)],
      },
      teams: [{ name: 'red', budget: { daily_usd: 1000 }, rate_limit: { requests_per_minute: 100_000 } }],
      providers: [provider('up', upstream.url, ['m'])],
      cache: { enabled: true },
      redis: { url: redis.url, key_prefix: `rf-${Date.now()}:`, command_timeout_ms: COMMAND_TIMEOUT_MS },
    });
    await waitFor(async () => (await metricValue(gw.metricsUrl, 'aigw_redis_up')) === 1, 'gateway connected to redis');
  });
  afterEach(async () => {
    redis.resume();
    await gw.shutdown();
    await upstream.close();
    await redis.close();
  });

  /** One request: alternately cacheable (temperature 0) and not, streaming every fourth. */
  async function one(i: number): Promise<Outcome> {
    const startedAt = Date.now();
    const extra = i % 4 === 3 ? { stream: true } : { temperature: i % 2 === 0 ? 0 : 1, messages: [{ role: 'user', content: `q${i % 7}` }] };
    const res = await post(gw.url, '/v1/chat/completions', chatBody('m', extra), { authorization: `Bearer ${CLIENT_KEY}` });
    const code = (res.json as { error?: { code?: string } } | undefined)?.error?.code;
    return { status: res.status, ms: Date.now() - startedAt, startedAt, code };
  }

  /** Runs `concurrency` request loops until stop() is called; returns every outcome. */
  function load(concurrency: number) {
    const outcomes: Outcome[] = [];
    let running = true;
    let n = 0;
    const loops = Array.from({ length: concurrency }, async () => {
      while (running) outcomes.push(await one(n++));
    });
    return {
      outcomes,
      stop: async () => {
        running = false;
        await Promise.all(loops);
        return outcomes;
      },
    };
  }

  it('Redis killed and restarted while traffic flows: zero client failures, spend buffered and flushed', async () => {
    const l = load(16);
    await new Promise((r) => setTimeout(r, 400));
    await redis.stop();
    const downAt = Date.now();
    await waitFor(async () => (await metricValue(gw.metricsUrl, 'aigw_redis_up')) === 0, 'gateway noticed redis is down');
    await new Promise((r) => setTimeout(r, 600));
    const servedWhileDown = l.outcomes.filter((o) => o.startedAt > downAt).length;
    await redis.restart();
    const upAt = Date.now();
    await waitFor(async () => (await metricValue(gw.metricsUrl, 'aigw_redis_up')) === 1, 'gateway reconnected', 8000);
    await new Promise((r) => setTimeout(r, 400));
    const outcomes = await l.stop();

    const failures = outcomes.filter((o) => o.status !== 200);
    assert.deepEqual(
      failures.map((o) => `${o.status} ${o.code}`),
      [],
      'no request failed because of Redis',
    );
    assert.ok(servedWhileDown >= 20, `traffic kept flowing while Redis was down (${servedWhileDown} requests)`);
    assert.ok(
      outcomes.some((o) => o.startedAt > upAt),
      'traffic after the restart',
    );

    // Spend accrued while Redis was down is flushed once it is back (the restarted Redis started empty).
    await waitFor(async () => (await metricValue(gw.metricsUrl, 'aigw_spend_buffered_entries')) === 0, 'buffered spend flushed');
    const report = (await (await fetch(`${gw.url}/v1/gateway/spend`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as { totals: { requests: number } };
    const sinceDown = outcomes.filter((o) => o.startedAt > downAt).length;
    assert.ok(report.totals.requests >= sinceDown, `spend report after restart counts ${report.totals.requests} requests; ${sinceDown} were sent after Redis went down`);
    assert.ok(report.totals.requests <= outcomes.length);
  });

  it('Redis hung (SIGSTOP): every request succeeds, each bounded by the Redis command timeout, and recovers on resume', async () => {
    // Warm up (connections, cache entries) while Redis is healthy.
    for (let i = 0; i < 8; i++) assert.equal((await one(i)).status, 200);
    redis.pause();
    const l = load(8);
    await new Promise((r) => setTimeout(r, 1500));
    const whilePaused = await l.stop();
    redis.resume();

    assert.ok(whilePaused.length >= 16, `requests ran while Redis was hung (${whilePaused.length})`);
    const failures = whilePaused.filter((o) => o.status !== 200);
    assert.deepEqual(
      failures.map((o) => `${o.status} ${o.code}`),
      [],
      'no request failed because Redis hung',
    );
    const slowest = Math.max(...whilePaused.map((o) => o.ms));
    // A request makes a few sequential Redis round trips (admission, cache lookup), each bounded by 100 ms.
    assert.ok(slowest < 1500, `slowest request while Redis hung took ${slowest} ms (command timeout ${COMMAND_TIMEOUT_MS} ms)`);
    assert.ok((await metricValue(gw.metricsUrl, 'aigw_redis_errors_total')) > 0, 'the timeouts were counted');

    const after = load(4);
    await new Promise((r) => setTimeout(r, 300));
    const resumed = await after.stop();
    assert.ok(resumed.every((o) => o.status === 200));
  });
});
