/**
 * Redis stopped (or hung) while traffic flows, then back: admission and settlement never fail
 * because of it, limits fall back to limit / expected_replicas in memory, and spend recorded
 * meanwhile reaches Redis once it returns, exactly once.
 */
import assert from 'node:assert/strict';
import type Redis from 'ioredis';
import { GatewayError } from '../../service/core/errors';
import { Metrics } from '../../service/metrics/metrics';
import { createTenancy, GatewayTenancy } from '../../service/tenancy/tenancy';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { connect, KEYS, metricValue, newMetrics, ready, settlement, testConfig, uniquePrefix, waitFor } from './fixtures';

describe('tenancy when Redis goes away', function () {
  this.timeout(30_000);
  let server: RedisServer;
  let redis: Redis;
  let metrics: Metrics;
  let tenancy: GatewayTenancy;

  beforeEach(async () => {
    server = await startRedis();
  });
  afterEach(async () => {
    tenancy?.close();
    redis?.disconnect();
    await server.close();
  });

  async function start(overrides: Parameters<typeof testConfig>[0] = {}) {
    const config = testConfig({
      rate_limit: { requests_per_minute: 20, expected_replicas: 2 },
      teams: [{ name: 'red', budget: { daily_usd: 100 } }, { name: 'blue' }],
      redis: { url: server.url, key_prefix: uniquePrefix(), command_timeout_ms: 200 },
      ...overrides,
    });
    metrics = newMetrics();
    redis = connect(config, metrics);
    await ready(redis);
    tenancy = createTenancy(config, { redis, metrics, flushIntervalMs: 50 });
    return tenancy.authenticate(`Bearer ${KEYS.alice}`);
  }

  /** Admits n requests; returns how many were admitted; anything but a rate-limit refusal fails the test. */
  async function admitMany(principal: ReturnType<GatewayTenancy['authenticate']>, n: number, onAdmit: () => void): Promise<number> {
    let admitted = 0;
    for (let i = 0; i < n; i++) {
      try {
        await tenancy.admit(principal, 'gpt-x');
        admitted++;
        onAdmit();
      } catch (err) {
        assert.ok(err instanceof GatewayError && err.status === 429 && err.type === 'rate_limit_error', `unexpected failure: ${String(err)}`);
      }
    }
    return admitted;
  }

  it('stopped: memory limits at limit / replicas, spend buffered, flushed after restart', async () => {
    const alice = await start();
    const cost = 0.0125;
    let sum = 0;
    const settle = () => {
      sum += cost;
      tenancy.settle(settlement(alice, cost));
    };
    assert.equal(await admitMany(alice, 4, settle), 4);
    await tenancy.flush();
    assert.equal(await metricValue(metrics, 'redisUp'), 1);

    await server.stop({ keepData: true });
    await waitFor(() => redis.status !== 'ready', 'client to notice');
    assert.equal(await metricValue(metrics, 'redisUp'), 0);

    // The in-memory fallback holds 20 / 2 = 10 requests per minute for this replica.
    assert.equal(await metricValue(metrics, 'rateLimitFallbacks', { scope: 'key' }), 0);
    assert.equal(await admitMany(alice, 15, settle), 10);
    assert.equal(await metricValue(metrics, 'rateLimitFallbacks', { scope: 'key' }), 15, 'every decision in memory is counted');
    assert.ok((await metricValue(metrics, 'spendBuffered')) > 0, 'spend is buffered');
    await assert.rejects(tenancy.spendReport({}), (e: GatewayError) => e.status === 503);
    await tenancy.flush(); // nothing to write to: must not throw or lose anything
    assert.ok((await metricValue(metrics, 'spendBuffered')) > 0);

    await server.restart();
    await ready(redis);
    await waitFor(async () => (await metricValue(metrics, 'spendBuffered')) === 0, 'buffer flushed by itself');
    const report = await tenancy.spendReport({});
    assert.equal(report.totals.requests, 14);
    assert.ok(Math.abs(report.totals.cost_usd - sum) < 1e-9, `report ${report.totals.cost_usd} == sum ${sum}`);

    // Back on the shared Redis limit: 4 used before the outage, 16 remain in this window.
    assert.equal(await admitMany(alice, 20, () => {}), 16);
  });

  it('flush() on shutdown writes what was buffered while Redis was down', async () => {
    const alice = await start();
    await server.stop();
    await waitFor(() => redis.status !== 'ready', 'client to notice');
    for (let i = 0; i < 5; i++) tenancy.settle(settlement(alice, 0.1));
    tenancy.close(); // no timer: only the explicit flush can write it
    await server.restart();
    await ready(redis);
    await tenancy.flush();
    const report = await tenancy.spendReport({});
    assert.ok(Math.abs(report.totals.cost_usd - 0.5) < 1e-9);
    assert.equal(await metricValue(metrics, 'spendBuffered'), 0);
  });

  it('hung (commands time out): admits on the fallback, and spend that may have landed is not counted twice', async () => {
    const alice = await start({ rate_limit: { requests_per_minute: 1000, expected_replicas: 1 } });
    server.pause();
    let sum = 0;
    for (let i = 0; i < 5; i++) {
      await tenancy.admit(alice, 'gpt-x'); // times out on Redis, answered by the fallback
      sum += 0.01;
      tenancy.settle(settlement(alice, 0.01));
    }
    await waitFor(async () => (await metricValue(metrics, 'redisErrors', { operation: 'spend_write' })) >= 1, 'a spend write to time out');
    assert.ok((await metricValue(metrics, 'spendBuffered')) > 0);
    server.resume(); // Redis now executes the writes it had received: they did land
    await tenancy.flush(); // and re-sending them must not count them again
    const report = await tenancy.spendReport({});
    assert.equal(report.totals.requests, 5);
    assert.ok(Math.abs(report.totals.cost_usd - sum) < 1e-9, `report ${report.totals.cost_usd} == sum ${sum}`);
  });

  it("budget while Redis is down: last known spend plus this replica's own spend", async () => {
    const alice = await start({ teams: [{ name: 'red', budget: { daily_usd: 1 } }, { name: 'blue' }], rate_limit: { requests_per_minute: 1000 } });
    for (let i = 0; i < 6; i++) {
      await tenancy.admit(alice, 'gpt-x');
      tenancy.settle(settlement(alice, 0.1));
    }
    await tenancy.flush();
    await tenancy.admit(alice, 'gpt-x'); // reads 0.6 from Redis
    await server.stop();
    await waitFor(() => redis.status !== 'ready', 'client to notice');
    let admitted = 0;
    for (let i = 0; i < 10; i++) {
      try {
        await tenancy.admit(alice, 'gpt-x');
        admitted++;
        tenancy.settle(settlement(alice, 0.1));
      } catch (err) {
        assert.ok(err instanceof GatewayError && err.code === 'budget_exceeded', String(err));
      }
    }
    assert.equal(admitted, 4, '0.6 known + 4 x 0.1 reaches the 1.0 budget');
  });
});
