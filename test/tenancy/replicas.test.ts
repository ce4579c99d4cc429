/**
 * Three Tenancy instances (three replicas, each with its own Redis connection) sharing one
 * real redis-server: one global rate limit, one budget, one spend ledger.
 */
import assert from 'node:assert/strict';
import type Redis from 'ioredis';
import { GatewayConfig } from '../../service/config/schema';
import { GatewayError } from '../../service/core/errors';
import { Metrics } from '../../service/metrics/metrics';
import type { Admission } from '../../service/tenancy/contracts';
import { createTenancy, GatewayTenancy } from '../../service/tenancy/tenancy';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { FAIR_DIVISOR, VIEW_MAX_AGE_MS } from '../../service/tenancy/lease';
import { connect, heldSlotsReleased, KEYS, metricValue, newMetrics, ready, settlement, testConfig, uniquePrefix, waitFor } from './fixtures';

interface Replica {
  tenancy: GatewayTenancy;
  redis: Redis;
  metrics: Metrics;
}

describe('tenancy across replicas sharing Redis', function () {
  this.timeout(20_000);
  let server: RedisServer;
  let replicas: Replica[] = [];

  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server?.close();
  });
  afterEach(() => {
    for (const r of replicas) {
      r.tenancy.close();
      r.redis.disconnect();
    }
    replicas = [];
  });

  async function start(config: GatewayConfig, n = 3): Promise<Replica[]> {
    for (let i = 0; i < n; i++) {
      const metrics = newMetrics();
      const redis = connect(config, metrics);
      await ready(redis);
      replicas.push({ tenancy: createTenancy(config, { redis, metrics }), redis, metrics });
    }
    return replicas;
  }

  const redisCfg = (extra: Record<string, unknown> = {}) => ({ url: server.url, key_prefix: uniquePrefix(), command_timeout_ms: 2000, ...extra });

  it('a 100 requests/minute limit admits exactly 100 in total, not 300', async () => {
    const config = testConfig({ rate_limit: { requests_per_minute: 100, expected_replicas: 3 }, redis: redisCfg() });
    const rs = await start(config);
    const alice = rs[0].tenancy.authenticate(`Bearer ${KEYS.alice}`);
    const results = await Promise.allSettled(rs.flatMap((r) => Array.from({ length: 100 }, () => r.tenancy.admit(alice, 'gpt-x'))));
    const admitted = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
    assert.equal(admitted.length, 100);
    assert.equal(refused.length, 200);
    for (const err of refused) {
      assert.ok(err instanceof GatewayError, String(err));
      assert.equal(err.status, 429);
      assert.equal(err.type, 'rate_limit_error');
      assert.equal(err.headers['x-ratelimit-limit-requests'], '100');
      assert.equal(err.headers['x-ratelimit-remaining-requests'], '0');
      assert.match(err.headers['x-ratelimit-reset-requests'], /^\d+(m\d+)?s$/);
      assert.ok(Number(err.headers['retry-after']) >= 1 && Number(err.headers['retry-after']) <= 60);
    }
    const remaining = admitted.map((r) => Number((r as PromiseFulfilledResult<{ headers: Record<string, string> }>).value.headers['x-ratelimit-remaining-requests'])).sort((a, b) => a - b);
    assert.deepEqual(
      remaining,
      Array.from({ length: 100 }, (_, i) => i),
      'each admission reports the shared remaining count',
    );
    const limited = await Promise.all(rs.map((r) => metricValue(r.metrics, 'rateLimited', { scope: 'key', kind: 'requests' })));
    assert.equal(
      limited.reduce((a, b) => a + b),
      200,
    );
    // Another key has its own window.
    const bob = rs[0].tenancy.authenticate(`Bearer ${KEYS.bob}`);
    await rs[1].tenancy.admit(bob, 'gpt-x');
  });

  it('burst allows extra requests above the per-minute rate, and a team limit caps all its keys', async () => {
    const base = testConfig();
    const config = testConfig({
      rate_limit: { requests_per_minute: 10, burst: 5 },
      // alice's own limit is loose, so team red's 12 per minute is the one that binds
      auth: { keys: base.auth.keys.map((k) => (k.name === 'alice' ? { ...k, rate_limit: { requests_per_minute: 50, burst: 0 } } : k)), admin_key_hashes: [] },
      teams: [{ name: 'red', rate_limit: { requests_per_minute: 12, burst: 0 } }, { name: 'blue' }],
      redis: redisCfg(),
    });
    const rs = await start(config, 2);
    const alice = rs[0].tenancy.authenticate(`Bearer ${KEYS.alice}`);
    const bob = rs[0].tenancy.authenticate(`Bearer ${KEYS.bob}`);
    const count = async (p: typeof alice, n: number) =>
      (await Promise.allSettled(Array.from({ length: n }, (_, i) => rs[i % 2].tenancy.admit(p, 'gpt-x')))).filter((r) => r.status === 'fulfilled').length;
    assert.equal(await count(bob, 30), 15, 'bob: 10 per minute + 5 burst');
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => rs[i % 2].tenancy.admit(alice, 'gpt-x')));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 12, 'alice: capped by team red at 12');
    const teamRefusals = await Promise.all(rs.map((r) => metricValue(r.metrics, 'rateLimited', { scope: 'team', kind: 'requests' })));
    assert.ok(teamRefusals.reduce((a, b) => a + b) > 0);
  });

  it('tokens per minute: admits while tokens remain, settle consumes the actual usage', async () => {
    const config = testConfig({ rate_limit: { tokens_per_minute: 1000 }, redis: redisCfg() });
    const [a, b] = await start(config, 2);
    const alice = a.tenancy.authenticate(`Bearer ${KEYS.alice}`);
    const first = await a.tenancy.admit(alice, 'gpt-x');
    assert.equal(first.headers['x-ratelimit-limit-tokens'], '1000');
    assert.equal(first.headers['x-ratelimit-remaining-tokens'], '1000');
    a.tenancy.settle(settlement(alice, 0.001, { usage: { prompt_tokens: 600, completion_tokens: 300 } }));
    await a.tenancy.flush();
    const second = await b.tenancy.admit(alice, 'gpt-x');
    assert.equal(second.headers['x-ratelimit-remaining-tokens'], '100', 'the other replica sees the usage');
    b.tenancy.settle(settlement(alice, 0.001, { usage: { prompt_tokens: 100, completion_tokens: 100 } }));
    await b.tenancy.flush();
    await assert.rejects(
      async () => a.tenancy.admit(alice, 'gpt-x'),
      (e: GatewayError) => e.status === 429 && e.headers['x-ratelimit-remaining-tokens'] === '0' && /tokens per minute/.test(e.message),
    );
  });

  it('tokens per minute, leased: concurrent admissions on two replicas each count their reservation; headers within the stated bound (docs/tenancy.md)', async () => {
    const config = testConfig({ rate_limit: { tokens_per_minute: 1000, expected_replicas: 2 }, redis: redisCfg() });
    const [a, b] = await start(config, 2);
    const alice = a.tenancy.authenticate(`Bearer ${KEYS.alice}`);
    const admitted = await Promise.all([a, b, a, b].map((r) => r.tenancy.admit(alice, 'gpt-x', 100)));
    // Bound: a replica's remaining leaves out what the other replica leased and holds unused, at
    // most 1.5 / (FAIR_DIVISOR x expected replicas) of the window.
    const slack = Math.ceil((1.5 * 1000) / (FAIR_DIVISOR * 2));
    const seen = admitted.map((x) => Number(x.headers['x-ratelimit-remaining-tokens'])).sort((x, y) => x - y);
    assert.equal(new Set(seen).size, 4, `each admission reports its own remaining: ${seen}`);
    [600, 700, 800, 900].forEach((exact, i) => assert.ok(seen[i] <= exact && seen[i] >= exact - slack, `remaining ${seen[i]} within [${exact - slack}, ${exact}]`));
    for (const x of admitted) a.tenancy.settle(settlement(alice, 0.001, { usage: { prompt_tokens: 10, completion_tokens: 0 }, reservation: x.reservation, at: Date.now() }));
    await a.tenancy.flush();
    // b's view of a's usage is at most VIEW_MAX_AGE_MS old: past it, its next take refreshes it.
    await new Promise((r) => setTimeout(r, VIEW_MAX_AGE_MS + 20));
    let last = 0;
    await waitFor(
      async () => {
        last = Number((await b.tenancy.admit(alice, 'gpt-x', 0)).headers['x-ratelimit-remaining-tokens']);
        return last <= 960 && last >= 960 - slack;
      },
      `reservations replaced by the 4 x 10 tokens used (remaining ${last}, want 960 less at most ${slack} held by a)`,
      3000,
    );
  });

  it('limit rules per model and per team x model are shared across replicas; the most specific rule of a group applies', async () => {
    const config = testConfig({
      providers: [
        {
          name: 'cheap',
          base_url: 'http://127.0.0.1:1/v1',
          models: [
            { name: 'gpt-x', input_per_million: 1, output_per_million: 2 },
            { name: 'gpt-y', input_per_million: 1, output_per_million: 2 },
          ],
        },
      ],
      rate_limit: { expected_replicas: 3 },
      limits: [
        // Each team gets 20 requests a minute per model, except red on gpt-y: 6.
        { resource: 'requests', capacity: 20, scope: { team: '*', model: '*' } },
        { resource: 'requests', capacity: 6, scope: { team: 'red', model: 'gpt-y' } },
        // gpt-x across every team: 30 a minute.
        { resource: 'requests', capacity: 30, scope: { model: 'gpt-x' } },
      ],
      redis: redisCfg(),
    });
    const rs = await start(config);
    const alice = rs[0].tenancy.authenticate(`Bearer ${KEYS.alice}`); // team red
    const bob = rs[0].tenancy.authenticate(`Bearer ${KEYS.bob}`); // team blue
    const admitted = async (p: typeof alice, model: string, n: number, order = [0, 1, 2]) => {
      const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => rs[order[i % 3]].tenancy.admit(p, model)));
      for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof GatewayError && r.reason.status === 429, String(r.reason));
      return results.filter((r) => r.status === 'fulfilled').length;
    };
    assert.equal(await admitted(alice, 'gpt-y', 30), 6, 'red x gpt-y: the named rule replaces the team x model "*" one');
    assert.equal(await admitted(bob, 'gpt-y', 30), 20, 'blue x gpt-y: the "*" rule, its own counter');
    assert.equal(await admitted(alice, 'gpt-x', 30), 20, 'red x gpt-x: 20, its own counter');
    // Blue's 30 at once: 10 are left of the model's 30. A request takes from both its rules at once,
    // so the 10 that blue's own rule refuses hold model slots until they are decided; requests on
    // another replica can be refused meanwhile (lease.ts, "Exactness"). Which replica's lease
    // Redis runs first decides how many: none of them is lost. (Replica 1 first: its lease
    // usually reaches Redis first, and the replica holding red's spare model slot is refused by
    // blue's own rule, so the slot is given back where no blue request can use it in this burst.)
    const burst = await admitted(bob, 'gpt-x', 30, [1, 2, 0]);
    assert.ok(burst >= 1 && burst <= 10, `blue x gpt-x at once: ${burst} of the 10 left`);
    // Every replica now found the window spent: what it holds is written back, and once its view
    // is renewed any replica gets it. One replica alone takes the rest, exactly.
    await heldSlotsReleased();
    let after = 0;
    for (let i = 0; i < 10 - burst; i++)
      after += await Promise.resolve(rs[1].tenancy.admit(bob, 'gpt-x')).then(
        () => 1,
        () => 0,
      );
    assert.equal(burst + after, 10, `blue x gpt-x: what is left of the model's 30 (${burst} at once, then ${after} on one replica)`);
    const byScope = async (scope: string) => (await Promise.all(rs.map((r) => metricValue(r.metrics, 'rateLimited', { scope, kind: 'requests' })))).reduce((a, b) => a + b);
    // Every refusal is counted once, under the rule that refused it (concurrent requests may meet either spent rule first).
    assert.equal((await byScope('team_model')) + (await byScope('model')), 24 + 10 + 10 + (30 - burst));
    assert.ok((await byScope('model')) > 0);
    await assert.rejects(
      async () => rs[2].tenancy.admit(bob, 'gpt-x'),
      (e: GatewayError) => e.status === 429 && /this model: 30 requests per minute/.test(e.message) && e.headers['x-ratelimit-remaining-requests'] === '0',
    );
  });

  it('per-provider request limits are shared across replicas', async () => {
    const config = testConfig({ redis: redisCfg() });
    const rs = await start(config);
    const results = await Promise.all(rs.flatMap((r) => Array.from({ length: 4 }, () => r.tenancy.admitProvider('cheap'))));
    assert.equal(results.filter(Boolean).length, 5, 'provider "cheap" allows 5 per minute');
    assert.equal(await rs[0].tenancy.admitProvider('pricey'), true, 'no limit configured');
  });

  it('a budget is overshot by at most one maximum cost plus the reservations other replicas made within one write + read; spend equals the sum of costs', async () => {
    const config = testConfig({ teams: [{ name: 'red', budget: { daily_usd: 1, alert_threshold: 0.5 } }, { name: 'blue' }], redis: redisCfg() });
    const rs = await start(config);
    const alice = rs[0].tenancy.authenticate(`Bearer ${KEYS.alice}`);
    const cost = 0.05;
    const loopsPerReplica = 2;
    let spent = 0;
    let refusals = 0;
    const loop = async (r: Replica) => {
      for (let i = 0; i < 200; i++) {
        let admission: Admission;
        try {
          admission = await r.tenancy.admit(alice, 'gpt-x', 0, cost); // its maximum cost is what it costs
        } catch (err) {
          assert.ok(err instanceof GatewayError && err.type === 'insufficient_quota' && err.code === 'budget_exceeded', String(err));
          assert.match(err.message, /daily budget of team "red"/);
          refusals++;
          return;
        }
        await new Promise((res) => setImmediate(res)); // the upstream call
        spent += cost;
        r.tenancy.settle(settlement(alice, cost, { reservation: admission.reservation }));
      }
    };
    await Promise.all(rs.flatMap((r) => Array.from({ length: loopsPerReplica }, () => loop(r))));
    await Promise.all(rs.map((r) => r.tenancy.flush()));
    // Each admission reserves its maximum cost at once in its own replica's view, and near the
    // budget writes it at the end of the turn. A replica's read can miss, per loop on another
    // replica, the reservation whose write is not applied yet and the one admitted after the read:
    // two per loop elsewhere; plus the maximum cost of the last request admitted.
    const inFlightBound = cost + 2 * (rs.length - 1) * loopsPerReplica * cost;
    assert.equal(refusals, rs.length * loopsPerReplica, 'every loop ended with a refusal');
    assert.ok(spent >= 1 - 1e-9, `spent ${spent} reaches the budget`);
    assert.ok(spent <= 1 + inFlightBound + 1e-9, `spent ${spent} overshoots by at most ${inFlightBound}`);
    const report = await rs[2].tenancy.spendReport({ team: 'red' });
    assert.ok(Math.abs(report.totals.cost_usd - spent) < 1e-9, `report ${report.totals.cost_usd} == sum ${spent}`);
    assert.ok(Math.abs(report.totals.list_cost_usd - spent * 3) < 1e-9);
    assert.ok(Math.abs(report.totals.savings_usd - spent * 2) < 1e-9);
    assert.equal(report.totals.requests, Math.round(spent / cost));
    assert.equal(report.by_project[0].project, 'web');
    const rejections = await Promise.all(rs.map((r) => metricValue(r.metrics, 'budgetRejections', { team: 'red', period: 'daily' })));
    assert.equal(
      rejections.reduce((a, b) => a + b),
      refusals,
    );
    assert.equal(await metricValue(rs[0].metrics, 'budgetAlert', { team: 'red', period: 'daily' }), 1);
    assert.ok((await metricValue(rs[0].metrics, 'budgetUsedRatio', { team: 'red', period: 'daily' })) >= 1);
    // Another team is unaffected.
    await rs[0].tenancy.admit(rs[0].tenancy.authenticate(`Bearer ${KEYS.bob}`), 'gpt-x');
  });

  it('reservations are seen by every replica before any request is settled; a burst reaching all replicas at once is admitted up to the budget on each', async () => {
    const config = testConfig({ teams: [{ name: 'red', budget: { daily_usd: 1, alert_threshold: 0.5 } }, { name: 'blue' }], redis: redisCfg() });
    const rs = await start(config);
    const alice = rs[0].tenancy.authenticate(`Bearer ${KEYS.alice}`);
    const maxCost = 0.1;
    const burst = (r: Replica, n: number) => Promise.allSettled(Array.from({ length: n }, () => r.tenancy.admit(alice, 'gpt-x', 0, maxCost)));
    const admittedOf = (results: PromiseSettledResult<Admission>[]) => results.filter((x): x is PromiseFulfilledResult<Admission> => x.status === 'fulfilled').map((x) => x.value);
    const isBudgetRefusal = (x: PromiseSettledResult<Admission>) => x.status === 'rejected' && x.reason instanceof GatewayError && x.reason.code === 'budget_exceeded';
    // One replica: admitted while its reservations leave budget (10 x $0.1), none settled yet.
    const first = await burst(rs[0], 20);
    const held = admittedOf(first);
    assert.equal(held.length, 10);
    assert.ok(first.filter((x) => x.status === 'rejected').every(isBudgetRefusal));
    await rs[0].tenancy.flush();
    // The other replicas see those reservations through Redis: refused before anything is settled.
    for (const r of rs.slice(1)) assert.ok(isBudgetRefusal((await burst(r, 1))[0]), 'a reservation of another replica counts');
    // Settled below their reservations ($0.02 each): the difference comes back, fleet-wide.
    for (const a of held) rs[0].tenancy.settle(settlement(alice, 0.02, { reservation: a.reservation }));
    await rs[0].tenancy.flush();
    // A burst reaching all three replicas at once: each admits against the $0.8 left as it read
    // it plus its own reservations; what the others reserve meanwhile is not visible yet.
    const bursts = await Promise.all(rs.map((r) => burst(r, 20)));
    const counts = bursts.map((b) => admittedOf(b).length);
    for (const c of counts) assert.ok(c <= 8, `a replica admits at most the $0.8 left: ${counts}`);
    const total = counts.reduce((a, b) => a + b);
    assert.ok(total >= 8 && total <= 3 * 8, `${counts}`);
    await Promise.all(rs.map((r) => r.tenancy.flush()));
    for (const r of rs) assert.ok(isBudgetRefusal((await burst(r, 1))[0]), 'once written, the reservations refuse further requests everywhere');
  });

  it('spend report: many concurrent settles on three replicas sum exactly; Prometheus counters agree', async () => {
    const config = testConfig({ redis: redisCfg() });
    const rs = await start(config);
    const alice = rs[0].tenancy.authenticate(`Bearer ${KEYS.alice}`);
    const bob = rs[0].tenancy.authenticate(`Bearer ${KEYS.bob}`);
    let sum = 0;
    for (let i = 0; i < 300; i++) {
      const c = 0.000123 * ((i % 7) + 1);
      sum += c;
      rs[i % 3].tenancy.settle(settlement(i % 2 ? alice : bob, c, { provider: i % 5 ? 'cheap' : 'pricey', estimated: i % 10 === 0 }));
    }
    rs[0].tenancy.settle(settlement(alice, 0, { cached: true, provider: 'cache', listCostUsd: 0.5 }));
    await Promise.all(rs.map((r) => r.tenancy.flush()));
    const report = await rs[1].tenancy.spendReport({});
    assert.ok(Math.abs(report.totals.cost_usd - sum) < 1e-9);
    assert.equal(report.totals.requests, 301);
    assert.equal(report.totals.cached_requests, 1);
    assert.equal(report.totals.estimated_requests, 30);
    assert.ok(Math.abs(report.totals.cache_savings_usd - 0.5) < 1e-9);
    assert.equal(report.totals.prompt_tokens, 300 * 100);
    assert.deepEqual(
      report.by_team.map((t) => [t.team, t.requests]),
      [
        ['blue', 150],
        ['red', 151],
      ],
    );
    assert.deepEqual(
      report.by_provider.map((t) => t.provider),
      ['cache', 'cheap', 'pricey'],
    );
    const promCost = (await Promise.all(rs.map((r) => metricValue(r.metrics, 'cost')))).reduce((a, b) => a + b);
    assert.ok(Math.abs(promCost - sum) < 1e-9);
    const cacheSavings = await metricValue(rs[0].metrics, 'savings', { reason: 'cache' });
    assert.equal(cacheSavings, 0.5);
    const tokensIn = (await Promise.all(rs.map((r) => metricValue(r.metrics, 'tokens', { direction: 'input' })))).reduce((a, b) => a + b);
    assert.equal(tokensIn, 300 * 100);
    const filtered = await rs[0].tenancy.spendReport({ team: 'red', provider: 'pricey' });
    assert.ok(filtered.totals.requests > 0 && filtered.totals.requests < 151);
  });
});
