/**
 * Redis commands per request: admission answers from leased slots and a recent view of the
 * team's spend, and spend is written in shared batches, so a request far from its limits costs
 * Redis a small fraction of a command; close to a budget, every admission reads the spend again.
 */
import assert from 'node:assert/strict';
import type Redis from 'ioredis';
import { BUDGET_VIEW_MS, cachedSpend, createTenancy, GatewayTenancy, HEADROOM_FACTOR } from '../../service/tenancy/tenancy';
import { utcPeriods } from '../../service/tenancy/budget';
import { Metrics } from '../../service/metrics/metrics';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { connect, KEYS, metricValue, newMetrics, ready, settlement, testConfig, uniquePrefix, waitFor } from './fixtures';

const NANO = 1e9;

describe('Redis commands per request', function () {
  this.timeout(20_000);

  describe('cachedSpend (pure): when a budget may be judged without a read', () => {
    const budget = { daily_usd: 10, alert_threshold: 0.8 };
    const at = Date.UTC(2026, 10, 25, 12);
    const { day, month } = utcPeriods(at);
    const seen = (over: Partial<Parameters<typeof cachedSpend>[0] & object> = {}) => ({
      day,
      month,
      dayNano: 1 * NANO,
      monthNano: 1 * NANO,
      readAt: at - 100,
      readMonthNano: 1 * NANO,
      rate: 0,
      ...over,
    });

    it('never read, read too long ago, or read on another day: a read is needed', () => {
      assert.equal(cachedSpend(undefined, budget, at, day), null);
      assert.equal(cachedSpend(seen({ readAt: 0 }), budget, at, day), null);
      assert.equal(cachedSpend(seen({ readAt: at - BUDGET_VIEW_MS }), budget, at, day), null);
      assert.equal(cachedSpend(seen(), budget, at, '2026-11-26'), null);
    });
    it('spend rate not measured yet (one read so far): a read is needed', () => {
      assert.equal(cachedSpend(seen({ rate: Infinity }), budget, at, day), null);
    });
    it("far from the budget at the measured rate: the view, with this replica's own spend in it", () => {
      assert.deepEqual(cachedSpend(seen({ dayNano: 2 * NANO }), budget, at, day), { day: 2 * NANO, month: 1 * NANO });
    });
    it("what is left could go within HEADROOM_FACTOR views at the fleet's rate: a read is needed", () => {
      const left = 9 * NANO; // 10 - 1
      const rate = left / (BUDGET_VIEW_MS * HEADROOM_FACTOR); // nano-USD per ms
      assert.equal(cachedSpend(seen({ rate }), budget, at, day), null);
      assert.ok(cachedSpend(seen({ rate: rate * 0.99 }), budget, at, day));
      assert.equal(cachedSpend(seen({ rate: 0, monthNano: 10 * NANO }), { ...budget, monthly_usd: 10 }, at, day), null, 'the monthly budget counts too');
    });
  });

  describe('against Redis', () => {
    let server: RedisServer;
    let redis: Redis;
    let metrics: Metrics;
    let tenancy: GatewayTenancy;
    before(async () => {
      server = await startRedis();
    });
    after(async () => {
      await server?.close();
    });
    afterEach(() => {
      tenancy?.close();
      redis?.disconnect();
    });

    async function start(teamBudgetUsd: number) {
      const config = testConfig({
        rate_limit: { requests_per_minute: 1_000_000, expected_replicas: 3 },
        teams: [{ name: 'red', budget: { daily_usd: teamBudgetUsd } }, { name: 'blue' }],
        redis: { url: server.url, key_prefix: uniquePrefix(), command_timeout_ms: 2000 },
      });
      metrics = newMetrics();
      redis = connect(config, metrics);
      await ready(redis);
      tenancy = createTenancy(config, { redis, metrics });
      return tenancy.authenticate(`Bearer ${KEYS.alice}`);
    }

    /** Requests one after another, each admitted, "served" for a turn of the event loop, and settled. */
    async function serve(principal: ReturnType<GatewayTenancy['authenticate']>, n: number, cost: number): Promise<{ commands: number; refused: number }> {
      const before = await metricValue(metrics, 'redisCommands', { role: 'state' });
      let refused = 0;
      for (let i = 0; i < n; i++) {
        try {
          await tenancy.admit(principal, 'gpt-x');
        } catch {
          refused++;
          continue;
        }
        await new Promise((r) => setImmediate(r));
        tenancy.settle(settlement(principal, cost));
      }
      await tenancy.flush();
      return { commands: (await metricValue(metrics, 'redisCommands', { role: 'state' })) - before, refused };
    }

    it('a budget view refreshed in the background is read after the provider call of the request that set it off (first byte)', async () => {
      let t = Date.UTC(2026, 11, 4, 12);
      const config = testConfig({ teams: [{ name: 'red', budget: { daily_usd: 1000 } }, { name: 'blue' }], redis: { url: server.url, key_prefix: uniquePrefix(), command_timeout_ms: 2000 } });
      metrics = newMetrics();
      redis = connect(config, metrics);
      await ready(redis);
      tenancy = createTenancy(config, { redis, metrics, now: () => t });
      const alice = tenancy.authenticate(`Bearer ${KEYS.alice}`);
      await tenancy.admit(alice, 'gpt-x'); // the first admission waits for its read
      t += 1000;
      await tenancy.admit(alice, 'gpt-x'); // so does the second: two reads measure the spend rate
      t += BUDGET_VIEW_MS / 2;
      const order: string[] = [];
      const hmget = redis.hmget;
      redis.hmget = function (this: Redis, ...a: unknown[]) {
        order.push('budget read');
        return (hmget as (...x: unknown[]) => unknown).apply(this, a);
      } as typeof redis.hmget;
      try {
        await tenancy.admit(alice, 'gpt-x'); // admitted from the view, which is refreshed
        setImmediate(() => order.push('provider call'));
        await waitFor(async () => order.length >= 2, 'the budget read and the provider call', 2000);
      } finally {
        redis.hmget = hmget;
      }
      assert.equal(order[0], 'provider call', order.join(', '));
      assert.ok(order.includes('budget read'));
    });

    it('far from every limit: well under one Redis command per request, and spend is still exact', async () => {
      const alice = await start(1000);
      const { commands, refused } = await serve(alice, 2000, 0.0001);
      assert.equal(refused, 0);
      assert.ok(commands / 2000 < 0.1, `${commands} Redis commands for 2,000 requests`);
      const report = await tenancy.spendReport({ team: 'red' });
      assert.equal(report.totals.requests, 2000);
      assert.ok(Math.abs(report.totals.cost_usd - 0.2) < 1e-9);
    });

    it('every limit kind on (requests, tokens, USD; key, team, team x model, model): at most one Redis command per request, and the token count is exact once flushed', async () => {
      const config = testConfig({
        rate_limit: { requests_per_minute: 1_000_000, tokens_per_minute: 1_000_000_000, expected_replicas: 3 },
        teams: [{ name: 'red', rate_limit: { requests_per_minute: 1_000_000, tokens_per_minute: 1_000_000_000 }, budget: { daily_usd: 1000 } }, { name: 'blue' }],
        limits: [
          { resource: 'tokens', capacity: 1_000_000_000, scope: { team: '*', model: '*' } },
          { resource: 'requests', capacity: 1_000_000, scope: { model: 'gpt-x' } },
          { resource: 'usd', window: 'day', capacity: 1000, scope: { team: 'red' } },
        ],
        redis: { url: server.url, key_prefix: uniquePrefix(), command_timeout_ms: 2000 },
      });
      metrics = newMetrics();
      redis = connect(config, metrics);
      await ready(redis);
      tenancy = createTenancy(config, { redis, metrics });
      const alice = tenancy.authenticate(`Bearer ${KEYS.alice}`);
      const before = await metricValue(metrics, 'redisCommands', { role: 'state' });
      const n = 2000;
      for (let i = 0; i < n; i++) {
        const a = await tenancy.admit(alice, 'gpt-x', 200);
        await new Promise((r) => setImmediate(r));
        tenancy.settle(settlement(alice, 0.0001, { reservation: a.reservation, at: Date.now() })); // 150 tokens used
      }
      await tenancy.flush();
      const commands = (await metricValue(metrics, 'redisCommands', { role: 'state' })) - before;
      assert.ok(commands / n <= 1, `${commands} Redis commands for ${n} requests with every limit kind on`);
      // flush() writes every debt and gives back every unused unit: Redis holds exactly the usage.
      assert.equal(Number(await redis.get('rl:{t:red}tokens/60/team+model:team=red,model=gpt-x')), n * 150, 'team x model tokens');
      assert.equal(Number(await redis.get('rl:{t:red}tokens/60/key:key=alice')), n * 150, 'key tokens');
      assert.equal(Number(await redis.get('rl:{t:red}usd/86400/team:team=red')), Math.round(n * 0.0001 * 1e9), 'USD window in nano-USD');
    });

    it('close to the budget: the spend is read for every admission and written at once, and the budget holds exactly on one replica', async () => {
      const alice = await start(0.01);
      const { commands, refused } = await serve(alice, 200, 0.0001);
      assert.equal(200 - refused, 100, 'a $0.01 budget at $0.0001 a request');
      assert.ok(commands >= 100, `${commands} Redis commands for 200 requests near the budget`);
    });
  });
});
