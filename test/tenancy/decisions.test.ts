/** Tables of cases for the pure decisions: keys, cost, tokens, budgets, limits, cache keys, spend report. */
import assert from 'node:assert/strict';
import { cacheDecision, cacheKey, canonical, MemoryCacheStore } from '../../service/cache/cache';
import { costUsd, maxCostUsd, priceRequest, toNanoUsd } from '../../service/cost/cost';
import { budgetKey, entryBatch, MemorySpendStore, parseSpendQuery, SpendEntry, summarize } from '../../service/cost/spend';
import { estimatePromptTokens, estimateTokens } from '../../service/cost/tokens';
import { checkBudget, Period, secondsUntilReset, utcPeriods } from '../../service/tenancy/budget';
import { createKeyRing, generateKey, hashKey, HashSet, parseBearer } from '../../service/tenancy/keys';
import { fallbackPoints, formatReset, rateLimitHeaders, tightest } from '../../service/tenancy/limits';
import { compileRules, describeRule, matchRules } from '../../service/tenancy/rules';
import { ConfigError } from '../../service/config/schema';
import { GatewayError } from '../../service/core/errors';
import { testConfig } from './fixtures';

describe('tenancy decisions', () => {
  describe('keys', () => {
    it('hashes as sha256:<hex> and generates distinct prefixed keys', () => {
      assert.equal(hashKey('abc'), 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
      const a = generateKey();
      const b = generateKey();
      assert.match(a, /^sk-gw-[A-Za-z0-9_-]{43}$/);
      assert.notEqual(a, b);
    });

    const bearerCases: Array<[string | undefined, string]> = [
      [undefined, 'missing'],
      ['', 'missing'],
      ['   ', 'missing'],
      ['Bearer', 'malformed'],
      ['Bearer ', 'malformed'],
      ['Basic dXNlcjpwYXNz', 'malformed'],
      ['Bearer two tokens', 'malformed'],
      ['sk-gw-raw-key-without-scheme', 'malformed'],
      ['Bearer sk-gw-ok', 'token'],
      ['bearer   sk-gw-ok  ', 'token'],
    ];
    for (const [header, kind] of bearerCases) {
      it(`parseBearer(${JSON.stringify(header)}) -> ${kind}`, () => assert.equal(parseBearer(header).kind, kind));
    }

    it('HashSet finds the matching entry wherever it sits and nothing else', () => {
      const set = new HashSet([
        [hashKey('one'), 1],
        [hashKey('two'), 2],
        [hashKey('three'), 3],
      ] as const);
      assert.equal(set.find('one'), 1);
      assert.equal(set.find('two'), 2);
      assert.equal(set.find('three'), 3);
      assert.equal(set.find('four'), undefined);
      assert.equal(set.find(hashKey('one')), undefined, 'the hash itself is not a key');
      assert.equal(set.findDigest(hashKey('two').slice('sha256:'.length)), 2, 'found by the digest of a presented key');
      assert.equal(set.findDigest(hashKey('two')), undefined, 'the prefixed hash is not a digest');
    });

    it('HashSet of 10,000 hashes (runtime keys) finds each by its digest, the last one of a repeated hash', () => {
      const set = new HashSet([...Array.from({ length: 10_000 }, (_, i) => [hashKey(`sk-gw-${i}`), i] as const), [hashKey('sk-gw-7'), -7] as const]);
      assert.equal(set.size, 10_000);
      for (const i of [0, 1, 4_999, 9_999]) assert.equal(set.find(`sk-gw-${i}`), i);
      assert.equal(set.find('sk-gw-7'), -7);
      assert.equal(set.find('sk-gw-10000'), undefined);
    });

    it('key ring: principal, failures, admin; none mode is anonymous', () => {
      const cfg = testConfig();
      const ring = createKeyRing(cfg.auth);
      assert.deepEqual(ring.resolve('Bearer sk-gw-alice-test-key'), { keyName: 'alice', team: 'red', project: 'web' });
      assert.equal(ring.resolve('Bearer sk-gw-nope'), 'unknown');
      assert.equal(ring.resolve(undefined), 'missing');
      assert.equal(ring.isAdmin('Bearer sk-gw-admin-test-key'), true);
      assert.equal(ring.isAdmin('Bearer sk-gw-alice-test-key'), false);
      assert.equal(ring.isAdmin(undefined), false);
      const none = createKeyRing({ mode: 'none', keys: [], admin_key_hashes: [] });
      assert.deepEqual(none.resolve(undefined), { keyName: 'anonymous', team: 'default', project: 'default' });
      assert.equal(none.isAdmin(undefined), true);
      const noneWithAdmin = createKeyRing({ mode: 'none', keys: [], admin_key_hashes: [hashKey('adm')] });
      assert.equal(noneWithAdmin.isAdmin(undefined), false);
      assert.equal(noneWithAdmin.isAdmin('Bearer adm'), true);
    });
  });

  describe('cost', () => {
    const cases: Array<[number, number, number, number, number]> = [
      // prompt, completion, in $/M, out $/M, expected USD
      [0, 0, 5, 15, 0],
      [1_000_000, 0, 5, 15, 5],
      [0, 1_000_000, 5, 15, 15],
      [1000, 500, 0.15, 0.6, 0.00045],
      [123, 456, 2.5, 10, 0.0048675],
    ];
    for (const [p, c, i, o, want] of cases) {
      it(`${p} in + ${c} out at ${i}/${o} per M = $${want}`, () => {
        assert.ok(Math.abs(costUsd({ prompt_tokens: p, completion_tokens: c }, { input_per_million: i, output_per_million: o }) - want) < 1e-12);
      });
    }

    it('priceRequest: provider cost, list cost at the list price, no savings without a list price, a cache hit costs nothing', () => {
      const usage = { prompt_tokens: 1000, completion_tokens: 1000 };
      const list = testConfig().models['gpt-x'].list_price;
      assert.deepEqual(priceRequest(usage, { input_per_million: 1, output_per_million: 2 }, list), { costUsd: 0.003, listCostUsd: 0.03 });
      assert.deepEqual(priceRequest(usage, { input_per_million: 1, output_per_million: 1 }, undefined), { costUsd: 0.002, listCostUsd: 0.002 });
      assert.deepEqual(priceRequest(usage, undefined, list), { costUsd: 0, listCostUsd: 0.03 });
      assert.deepEqual(priceRequest(usage, undefined, undefined), { costUsd: 0, listCostUsd: 0 });
    });

    it('maxCostUsd: the costliest candidate at the max tokens, else its reserve, else the gateway default; unpriced holds nothing', () => {
      const cheap = { inputPerMillion: 1, outputPerMillion: 2, unpriced: false };
      const pricey = { inputPerMillion: 10, outputPerMillion: 20, unpriced: false, reserveOutputTokens: 100 };
      const free = { inputPerMillion: 0, outputPerMillion: 0, unpriced: true, reserveOutputTokens: 1_000_000 };
      const cases: Array<[string, Parameters<typeof maxCostUsd>, number]> = [
        ['max tokens at the highest price', [[cheap, pricey], 1000, 500, 4096], (1000 * 10 + 500 * 20) / 1e6],
        ['no max tokens: each candidate its own reserve, else the default', [[cheap, pricey], 1000, undefined, 4096], Math.max(1000 * 1 + 4096 * 2, 1000 * 10 + 100 * 20) / 1e6],
        ['embeddings: no output', [[cheap], 1000, 0, 4096], 1000 / 1e6],
        ['n choices: each up to the max tokens', [[cheap], 1000, 500, 4096, 3], (1000 * 1 + 3 * 500 * 2) / 1e6],
        ['unpriced candidates hold nothing', [[free], 1000, undefined, 4096], 0],
        ['no candidates', [[], 1000, 10, 4096], 0],
      ];
      for (const [what, args, want] of cases) assert.ok(Math.abs(maxCostUsd(...args) - want) < 1e-15, `${what}: ${maxCostUsd(...args)} != ${want}`);
    });

    it('nano-USD rounding keeps sums exact', () => {
      assert.equal(toNanoUsd(0.00045), 450_000);
      let sum = 0;
      for (let i = 0; i < 1000; i++) sum += toNanoUsd(0.0000001);
      assert.equal(sum, 100_000);
    });
  });

  describe('token estimation', () => {
    it('counts text with the tokenizer', () => {
      assert.equal(estimateTokens(''), 0);
      assert.equal(estimateTokens('hello world'), 2);
    });
    it('chat prompt: content plus per-message and priming overheads, string and part arrays', () => {
      const one = estimatePromptTokens({ messages: [{ role: 'user', content: 'hello world' }] });
      assert.equal(one, 3 + 3 + 2);
      const parts = estimatePromptTokens({ messages: [{ role: 'user', content: [{ type: 'text', text: 'hello world' }] }] });
      assert.equal(parts, one);
      const two = estimatePromptTokens({
        messages: [
          { role: 'system', content: 'hello world' },
          { role: 'user', content: 'hello world' },
        ],
      });
      assert.equal(two, one + 3 + 2);
    });
    it('completions prompt and embeddings input', () => {
      assert.equal(estimatePromptTokens({ prompt: 'hello world' }), 2);
      assert.equal(estimatePromptTokens({ input: ['hello world', 'hello world'] }), estimateTokens('hello world\nhello world'));
      assert.equal(estimatePromptTokens({}), 0);
    });
  });

  describe('budgets', () => {
    const budget = { daily_usd: 10, monthly_usd: 100, alert_threshold: 0.8 };
    const usd = (n: number) => toNanoUsd(n);
    const cases: Array<[string, number, number, string | null, boolean, boolean]> = [
      // name, day spent, month spent, refused, daily alert, monthly alert
      ['nothing spent', 0, 0, null, false, false],
      ['below alert', 7.99, 50, null, false, false],
      ['at alert threshold', 8, 50, null, true, false],
      ['just below daily', 9.999999, 50, null, true, false],
      ['daily spent exactly', 10, 50, 'daily', true, false],
      ['daily over', 12, 50, 'daily', true, false],
      ['monthly spent', 1, 100, 'monthly', false, true],
      ['both spent: daily first', 11, 101, 'daily', true, true],
    ];
    for (const [name, day, month, refused, dAlert, mAlert] of cases) {
      it(name, () => {
        const s = checkBudget(budget, { day: usd(day), month: usd(month) });
        assert.equal(s.refused, refused);
        assert.equal(s.alerts.daily, dAlert);
        assert.equal(s.alerts.monthly, mAlert);
        assert.ok(Math.abs(s.ratios.daily! - day / 10) < 1e-9);
      });
    }
    it('only configured periods count; no budget never refuses', () => {
      assert.deepEqual(checkBudget({ monthly_usd: 5, alert_threshold: 0.5 }, { day: usd(100), month: usd(1) }), { refused: null, ratios: { monthly: 0.2 }, alerts: { monthly: false } });
      assert.equal(checkBudget(undefined, { day: usd(1e6), month: usd(1e6) }).refused, null);
    });
    it('UTC periods from an injected clock', () => {
      assert.deepEqual(utcPeriods(Date.UTC(2025, 0, 31, 23, 59, 59)), { day: '2025-01-31', month: '2025-01' });
      assert.deepEqual(utcPeriods(Date.UTC(2025, 1, 1, 0, 0, 0)), { day: '2025-02-01', month: '2025-02' });
    });
    const resets: Array<[Period, number, number]> = [
      ['daily', Date.UTC(2025, 0, 31, 23, 59, 59), 1],
      ['daily', Date.UTC(2025, 0, 31, 12, 0, 0), 12 * 3600],
      ['daily', Date.UTC(2025, 0, 31, 23, 59, 59, 999), 1],
      ['monthly', Date.UTC(2025, 0, 31, 23, 0, 0), 3600],
      ['monthly', Date.UTC(2024, 1, 28, 0, 0, 0), 2 * 86400], // leap year: Feb 29 comes first
      ['monthly', Date.UTC(2025, 11, 31, 0, 0, 0), 86400], // December rolls into next year
    ];
    for (const [period, at, expected] of resets) {
      it(`${period} budget resets in ${expected} s from ${new Date(at).toISOString()}`, () => assert.equal(secondsUntilReset(period, at), expected));
    }
  });

  describe('limit rules (config and matching)', () => {
    const rules = (limits: unknown[]) => compileRules(testConfig({ limits: limits as never }));
    const facts = { key: 'alice', team: 'red', project: 'web', model: 'gpt-x' };
    it('a "*" dimension counts each value apart; a left-out one is the total; provider rules wait for the attempt', () => {
      const m = matchRules(
        rules([
          { resource: 'tokens', capacity: 100, scope: { team: '*', model: '*' } },
          { resource: 'requests', capacity: 5, scope: { model: 'gpt-x' } },
          { resource: 'requests', capacity: 9, scope: { provider: 'cheap' } },
        ]),
        facts,
      );
      assert.deepEqual(
        m.map((x) => [x.counter, x.scopeLabel]),
        [
          // A scope with key, team or project: the team's hash tag; else the counter's own.
          ['{t:red}tokens/60/team+model:team=red,model=gpt-x', 'team_model'],
          ['{requests/60/model:model=gpt-x}requests/60/model:model=gpt-x', 'model'],
        ],
      );
      assert.equal(matchRules(rules([{ resource: 'requests', capacity: 5, scope: { team: 'blue' } }]), facts).length, 0, 'another team');
    });
    it('of one group the most specific rule applies; USD in nano-USD; windows', () => {
      const m = matchRules(
        rules([
          { resource: 'usd', window: 'day', capacity: 2, scope: { team: '*' } },
          { resource: 'usd', window: 'day', capacity: 0.5, scope: { team: 'red' } },
        ]),
        facts,
      );
      assert.equal(m.length, 1);
      assert.equal(m[0].rule.capacity, 0.5e9);
      assert.equal(m[0].rule.windowSeconds, 86400);
      assert.equal(describeRule(m[0].rule), '0.5 USD per day');
    });
    const invalid: Array<[string, unknown, RegExp]> = [
      ['no scope', { resource: 'requests', capacity: 1, scope: {} }, /at least one of key, team/],
      ['an unknown model', { resource: 'requests', capacity: 1, scope: { model: 'nope' } }, /limits\[0\]\.scope\.model: unknown model "nope"/],
      ['an unknown team', { resource: 'requests', capacity: 1, scope: { team: 'green' } }, /unknown team "green"/],
      ['a provider with a team', { resource: 'requests', capacity: 1, scope: { provider: 'cheap', team: 'red' } }, /provider scope stands alone/],
      ['provider tokens', { resource: 'tokens', capacity: 1, scope: { provider: 'cheap' } }, /provider scope stands alone/],
      ['fractional requests', { resource: 'requests', capacity: 1.5, scope: { team: '*' } }, /whole number of requests/],
      ['an unknown window', { resource: 'requests', capacity: 1, window: 'week', scope: { team: '*' } }, /window/],
    ];
    for (const [name, rule, want] of invalid)
      it(`rejects ${name} with a message naming the field`, () =>
        assert.throws(
          () => rules([rule]),
          (e: ConfigError) => e instanceof ConfigError && want.test(e.message),
        ));
    it('redis.cluster does not go with sentinels', () => {
      assert.throws(() => testConfig({ redis: { url: 'redis://127.0.0.1:1', cluster: true, sentinels: [{ host: 'a' }], sentinel_name: 'm' } }), /cluster and sentinels do not go together/);
      assert.equal(testConfig({ redis: { url: 'redis://127.0.0.1:1', cluster: true } }).redis?.cluster, true);
    });
  });

  describe('rate limit specs and headers', () => {
    const global = { requests_per_minute: 100, burst: 10, tokens_per_minute: 5000 };
    const keyRules = (own: Record<string, number> | undefined) => {
      const base = testConfig();
      const config = testConfig({ rate_limit: global, auth: { keys: base.auth.keys.map((k) => (k.name === 'alice' ? { ...k, rate_limit: own } : k)), admin_key_hashes: [] } });
      return matchRules(compileRules(config), { key: 'alice', team: 'red', project: 'web', model: 'gpt-x' }).map((m) => [m.rule.resource, m.rule.capacity, m.rule.burst, m.rule.source]);
    };
    it('a key falls back to the global limit field by field (its own rules replace the key: "*" ones)', () => {
      assert.deepEqual(keyRules(undefined), [
        ['requests', 100, 10, 'rate_limit'],
        ['tokens', 5000, 0, 'rate_limit'],
      ]);
      assert.deepEqual(keyRules({ requests_per_minute: 5, burst: 0 }), [
        ['requests', 5, 0, 'auth.keys[0].rate_limit'],
        ['tokens', 5000, 0, 'auth.keys[0].rate_limit'],
      ]);
      assert.deepEqual(keyRules({ tokens_per_minute: 7 }), [
        ['requests', 100, 10, 'auth.keys[0].rate_limit'],
        ['tokens', 7, 0, 'auth.keys[0].rate_limit'],
      ]);
    });
    const fallback: Array<[number, number, number]> = [
      [100, 1, 100],
      [100, 3, 33],
      [100, 4, 25],
      [2, 5, 1],
    ];
    for (const [points, replicas, want] of fallback) it(`fallback ${points}/${replicas} replicas = ${want}`, () => assert.equal(fallbackPoints(points, replicas), want));
    const resets: Array<[number, string]> = [
      [0, '0ms'],
      [250, '250ms'],
      [1000, '1s'],
      [1001, '2s'],
      [59_000, '59s'],
      [60_000, '1m0s'],
      [361_000, '6m1s'],
    ];
    for (const [ms, want] of resets) it(`reset ${ms} ms -> ${want}`, () => assert.equal(formatReset(ms), want));
    it('headers report the tightest scope', () => {
      const t = tightest([
        { limit: 100, remaining: 50, resetMs: 1000 },
        { limit: 10, remaining: 2, resetMs: 3000 },
      ]);
      assert.deepEqual(rateLimitHeaders(t, undefined), { 'x-ratelimit-limit-requests': '10', 'x-ratelimit-remaining-requests': '2', 'x-ratelimit-reset-requests': '3s' });
    });
  });

  describe('cache keys', () => {
    const body = { model: 'gpt-x', temperature: 0, messages: [{ role: 'user', content: 'hi' }] };
    const decisions: Array<[string, Record<string, unknown>, Record<string, string>, string]> = [
      ['temperature 0', body, {}, 'cacheable'],
      ['temperature 0.7', { ...body, temperature: 0.7 }, {}, 'not-deterministic'],
      ['no temperature', { messages: [] }, {}, 'not-deterministic'],
      ['opt-in header', { ...body, temperature: 1 }, { 'x-gateway-cache': 'true' }, 'cacheable'],
      ['opt-out header', body, { 'x-gateway-cache': 'false' }, 'no-cache'],
      ['streaming', { ...body, stream: true }, { 'x-gateway-cache': 'true' }, 'streaming'],
      ['Cache-Control: no-cache', body, { 'cache-control': 'no-cache' }, 'no-cache'],
      ['Cache-Control: max-age=0, no-store', body, { 'cache-control': 'max-age=0, no-store' }, 'no-cache'],
      ['Cache-Control: max-age=60', body, { 'cache-control': 'max-age=60' }, 'cacheable'],
    ];
    for (const [name, b, h, want] of decisions) it(`${name} -> ${want}`, () => assert.equal(cacheDecision(b, h), want));

    it('key ignores key order and output-neutral fields, not the rest', () => {
      const k = cacheKey('red', 'gpt-x', body);
      assert.match(k, /^cache:\{t:[a-z0-9-]+\}:[0-9a-f]{64}$/);
      assert.equal(cacheKey('red', 'gpt-x', { messages: [{ content: 'hi', role: 'user' }], temperature: 0, stream: false, user: 'u1', model: 'other' }), k);
      assert.notEqual(cacheKey('blue', 'gpt-x', body), k, 'teams never share');
      assert.notEqual(cacheKey('red', 'gpt-y', body), k, 'model is part of the key');
      assert.notEqual(cacheKey('red', 'gpt-x', { ...body, seed: 1 }), k);
      assert.notEqual(cacheKey('red', 'gpt-x', { ...body, messages: [{ role: 'user', content: 'hi!' }] }), k);
      assert.deepEqual(canonical({ b: [{ d: 1, c: 2 }], a: undefined }), { b: [{ c: 2, d: 1 }] });
    });

    it('memory store expires entries by the injected clock and stays bounded', async () => {
      let t = 0;
      const store = new MemoryCacheStore(() => t, 2);
      await store.set('a', 'A', 10);
      assert.equal(await store.get('a'), 'A');
      t = 10_000;
      assert.equal(await store.get('a'), null);
      await store.set('x', '1', 10);
      await store.set('y', '2', 10);
      await store.set('z', '3', 10);
      assert.equal(await store.get('x'), null);
      assert.equal(await store.get('z'), '3');
    });
  });

  describe('spend report', () => {
    const now = Date.UTC(2025, 2, 15, 12);
    it('query defaults to the month so far; validates dates and range', () => {
      assert.deepEqual(parseSpendQuery({}, now).days.length, 15);
      assert.deepEqual(parseSpendQuery({ from: '2025-03-14', to: '2025-03-15', team: 'red' }, now), {
        query: { from: '2025-03-14', to: '2025-03-15', team: 'red' },
        days: ['2025-03-14', '2025-03-15'],
      });
      for (const bad of [{ from: '2025-3-1' }, { from: '2025-02-30' }, { from: '2025-03-16', to: '2025-03-15' }, { from: '2020-01-01' }, { team: ['a', 'b'] }]) {
        assert.throws(
          () => parseSpendQuery(bad, now),
          (e: unknown) => e instanceof GatewayError && e.status === 400,
          JSON.stringify(bad),
        );
      }
    });

    it('aggregates totals and breakdowns with savings, filtered', async () => {
      const store = new MemorySpendStore();
      const base: SpendEntry = {
        day: '2025-03-14',
        month: '2025-03',
        team: 'red',
        project: 'web',
        provider: 'cheap',
        model: 'gpt-x',
        costUsd: 0.01,
        listCostUsd: 0.03,
        cached: false,
        estimated: false,
        promptTokens: 10,
        completionTokens: 5,
      };
      await store.apply(entryBatch(base));
      await store.apply(entryBatch({ ...base, day: '2025-03-15', estimated: true }));
      await store.apply(entryBatch({ ...base, day: '2025-03-15', cached: true, provider: 'cache' }));
      await store.apply(entryBatch({ ...base, team: 'blue', project: 'batch', costUsd: 1, listCostUsd: 1 }));
      const days = ['2025-03-14', '2025-03-15'];
      const all = summarize({ from: days[0], to: days[1] }, days, await store.readDays(days));
      assert.equal(all.totals.requests, 4);
      assert.ok(Math.abs(all.totals.cost_usd - 1.02) < 1e-12);
      assert.ok(Math.abs(all.totals.list_cost_usd - 1.09) < 1e-12);
      assert.ok(Math.abs(all.totals.cache_savings_usd - 0.03) < 1e-12);
      assert.ok(Math.abs(all.totals.routing_savings_usd - 0.04) < 1e-12);
      assert.equal(all.totals.cached_requests, 1);
      assert.equal(all.totals.estimated_requests, 1);
      assert.equal(all.totals.prompt_tokens, 30, 'cached hits use no upstream tokens');
      assert.deepEqual(
        all.by_team.map((r) => r.team),
        ['blue', 'red'],
      );
      assert.deepEqual(
        all.by_provider.map((r) => [r.provider, r.requests]),
        [
          ['cache', 1],
          ['cheap', 3],
        ],
      );
      assert.deepEqual(
        all.by_day.map((r) => [r.date, r.requests]),
        [
          ['2025-03-14', 2],
          ['2025-03-15', 2],
        ],
      );
      const red = summarize({ from: days[0], to: days[1], team: 'red' }, days, await store.readDays(days));
      assert.equal(red.totals.requests, 3);
      assert.deepEqual(red.filters, { team: 'red' });
      assert.deepEqual(await store.readBudget('red', '2025-03-15', '2025-03'), { day: toNanoUsd(0.01), month: toNanoUsd(0.02) });
    });

    it('a settlement whose cost a reservation holds: its budget scopes get cost - reservation in the reservation day, the spend rows the cost', async () => {
      const store = new MemorySpendStore();
      const entry: SpendEntry = {
        day: '2025-03-15',
        month: '2025-03',
        team: 'red',
        project: 'web',
        provider: 'cheap',
        model: 'gpt-x',
        costUsd: 0.01,
        listCostUsd: 0.01,
        cached: false,
        estimated: false,
        promptTokens: 1,
        completionTokens: 1,
        keyBudgetScope: 'key:k1',
      };
      const reservation = { nano: toNanoUsd(0.05), day: '2025-03-14', month: '2025-03', scopes: ['red'] }; // made before midnight, in the team's budget only
      const held = new Map([
        [
          budgetKey('red', '2025-03'),
          new Map([
            ['m', reservation.nano],
            ['d:2025-03-14', reservation.nano],
          ]),
        ],
      ]);
      await store.apply(held);
      await store.apply(entryBatch({ ...entry, reserved: reservation }));
      assert.deepEqual(await store.readBudget('red', '2025-03-14', '2025-03'), { day: toNanoUsd(0.01), month: toNanoUsd(0.01) }, 'the reservation replaced by the cost');
      assert.deepEqual(await store.readBudget('red', '2025-03-15', '2025-03'), { day: 0, month: toNanoUsd(0.01) });
      assert.deepEqual(await store.readBudget('key:k1', '2025-03-15', '2025-03'), { day: toNanoUsd(0.01), month: toNanoUsd(0.01) }, 'a scope it did not hold gets the cost');
      const report = summarize({ from: '2025-03-15', to: '2025-03-15' }, ['2025-03-15'], await store.readDays(['2025-03-15']));
      assert.equal(report.totals.cost_usd, 0.01);
    });
  });
});
