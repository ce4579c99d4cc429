/** Table-driven tests of the routing decisions: strategies, backoff, Retry-After, circuit breaker. */
import assert from 'node:assert/strict';
import { parseConfig } from '../../service/config/schema';
import { isRetryableStatus } from '../../service/providers/common';
import { backoffDelay, decideRetry, retryAfterMs } from '../../service/routing/backoff';
import { buildCatalog, Candidate } from '../../service/routing/catalog';
import { BreakerSettings, canPass, CircuitBreakers, initialCircuit, onAttempt, onResult } from '../../service/routing/circuit-breaker';
import { ProviderStats, StatsTracker } from '../../service/routing/provider-stats';
import { PlanContext, planRoute } from '../../service/routing/strategies';
import { mulberry32 } from '../helpers/random';

const seeded = mulberry32;
/** A random() that returns the given values in turn. */
const sequence = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length];
};

const config = parseConfig({
  auth: { mode: 'none' },
  providers: [
    { name: 'cheap-slow', base_url: 'http://127.0.0.1:1/v1', priority: 3, models: [{ name: 'm', input_per_million: 0.1, output_per_million: 0.4 }] },
    { name: 'mid', base_url: 'http://127.0.0.1:2/v1', priority: 2, models: [{ name: 'm', input_per_million: 0.5, output_per_million: 1 }] },
    { name: 'pricey-fast', base_url: 'http://127.0.0.1:3/v1', priority: 1, models: [{ name: 'm', upstream_name: 'm-2024', input_per_million: 5, output_per_million: 15 }] },
    // cheap on input, expensive on output: wins only for prompt-heavy requests
    { name: 'input-cheap', base_url: 'http://127.0.0.1:4/v1', models: [{ name: 'm2', input_per_million: 0.01, output_per_million: 20 }] },
    { name: 'output-cheap', base_url: 'http://127.0.0.1:5/v1', models: [{ name: 'm2', input_per_million: 3, output_per_million: 0.5 }] },
  ],
  models: {
    m: { weights: { 'cheap-slow': 95, mid: 5, 'pricey-fast': 0 } },
    alias: {
      targets: [
        { provider: 'mid', model: 'm' },
        { provider: 'pricey-fast', model: 'm' },
      ],
      strategy: 'priority',
      order: ['pricey-fast', 'mid'],
    },
  },
});
const catalog = buildCatalog(config);
const cands = catalog.resolve('m')!.candidates;
const names = (plan: Candidate[]) => plan.map((c) => c.provider.name);

const NOW = 1_000_000;
const heard = (agoMs: number) => ({ samples: 5, lastSuccessAt: NOW - agoMs });

function ctx(over: Partial<PlanContext> & { statsBy?: Record<string, Partial<ProviderStats>> } = {}): PlanContext {
  const statsBy = over.statsBy ?? {};
  return {
    strategy: 'cost-optimal',
    stats: (c) => ({ errorRate: 0, samples: 0, ...statsBy[c.provider.name] }),
    random: seeded(1),
    expectedTokens: { input: 1000, output: 256 },
    latencyMetric: 'totalMs',
    balanced: { price: 1, latency: 1, errors: 2 },
    now: NOW,
    exploration: { share: 0, reprobeAfterMs: 60_000 },
    ...over,
  };
}

describe('routing decisions', () => {
  describe('catalog', () => {
    it('resolves direct models, upstream names and aliases; unknown is undefined', () => {
      assert.deepEqual(names(cands), ['cheap-slow', 'mid', 'pricey-fast']);
      assert.equal(cands[2].upstreamModel, 'm-2024');
      const alias = catalog.resolve('alias')!;
      assert.deepEqual(names(alias.candidates), ['mid', 'pricey-fast']);
      assert.equal(alias.strategy, 'priority');
      assert.equal(catalog.resolve('../../etc/passwd'), undefined);
      assert.deepEqual(
        catalog.list().map((m) => m.id),
        ['alias', 'm', 'm2'],
      );
    });
    it('resolveFor keeps only the candidates serving the endpoint, and returns the same route each time', () => {
      const chat = catalog.resolveFor('m', 'chat')!;
      assert.deepEqual(names(chat.candidates), ['cheap-slow', 'mid', 'pricey-fast']);
      assert.equal(catalog.resolveFor('m', 'chat'), chat);
      assert.deepEqual(catalog.resolveFor('m', 'embedding')!.candidates, []);
      assert.equal(catalog.resolveFor('nope', 'chat'), undefined);
    });
    it('list price is models.<name>.list_price only: never a provider price (no savings claimed without one)', () => {
      assert.equal(catalog.resolve('m')!.listPrice, undefined);
      const listed = buildCatalog(parseConfig({ ...JSON.parse(JSON.stringify(config)), models: { m: { list_price: { input_per_million: 7, output_per_million: 9 } } } }));
      assert.deepEqual(listed.resolve('m')!.listPrice, { input_per_million: 7, output_per_million: 9 });
    });
  });

  describe('strategies return a full ordered plan (the tail is the fallback chain)', () => {
    const m2 = catalog.resolve('m2')!.candidates;
    const table: Array<[string, Candidate[], Partial<PlanContext> & { statsBy?: Record<string, Partial<ProviderStats>> }, string[]]> = [
      ['cost-optimal: cheapest first', cands, { strategy: 'cost-optimal' }, ['cheap-slow', 'mid', 'pricey-fast']],
      ['cost-optimal: prompt-heavy request prefers cheap input', m2, { strategy: 'cost-optimal', expectedTokens: { input: 100_000, output: 10 } }, ['input-cheap', 'output-cheap']],
      ['cost-optimal: output-heavy request prefers cheap output', m2, { strategy: 'cost-optimal', expectedTokens: { input: 10, output: 4000 } }, ['output-cheap', 'input-cheap']],
      [
        'latency-optimal: lowest EWMA first',
        cands,
        { strategy: 'latency-optimal', statsBy: { 'cheap-slow': { totalMs: 900 }, mid: { totalMs: 300 }, 'pricey-fast': { totalMs: 80 } } },
        ['pricey-fast', 'mid', 'cheap-slow'],
      ],
      [
        'latency-optimal: streams rank by time to first byte',
        cands,
        {
          strategy: 'latency-optimal',
          latencyMetric: 'ttfbMs',
          statsBy: { 'cheap-slow': { ttfbMs: 20, totalMs: 900 }, mid: { ttfbMs: 50, totalMs: 60 }, 'pricey-fast': { ttfbMs: 90, totalMs: 100 } },
        },
        ['cheap-slow', 'mid', 'pricey-fast'],
      ],
      [
        'latency-optimal: a never-tried provider goes first, so it gets measured',
        cands,
        { strategy: 'latency-optimal', statsBy: { 'cheap-slow': { totalMs: 900 }, mid: { totalMs: 300 } } },
        ['pricey-fast', 'mid', 'cheap-slow'],
      ],
      [
        'latency-optimal: a never-tried provider listed after a healthy measured one goes first',
        cands.slice(0, 2),
        { strategy: 'latency-optimal', statsBy: { 'cheap-slow': { totalMs: 150, ...heard(10) } } },
        ['mid', 'cheap-slow'],
      ],
      [
        'latency-optimal: several never tried: the first in config order goes first',
        cands,
        { strategy: 'latency-optimal', statsBy: { 'pricey-fast': { totalMs: 80, ...heard(10) } } },
        ['cheap-slow', 'pricey-fast', 'mid'],
      ],
      [
        'latency-optimal: a provider with only failures so far ranks after the measured ones',
        cands,
        { strategy: 'latency-optimal', statsBy: { 'cheap-slow': { totalMs: 900, ...heard(10) }, mid: { samples: 2, lastFailureAt: NOW - 10 }, 'pricey-fast': { totalMs: 80, ...heard(10) } } },
        ['pricey-fast', 'cheap-slow', 'mid'],
      ],
      [
        'latency-optimal: a provider quiet for reprobe_after_ms goes first once, to be re-measured',
        cands,
        { strategy: 'latency-optimal', statsBy: { 'cheap-slow': { totalMs: 900, ...heard(60_000) }, mid: { totalMs: 300, ...heard(5) }, 'pricey-fast': { totalMs: 80, ...heard(1) } } },
        ['cheap-slow', 'pricey-fast', 'mid'],
      ],
      [
        'latency-optimal: quiet for less than reprobe_after_ms: latency order',
        cands,
        { strategy: 'latency-optimal', statsBy: { 'cheap-slow': { totalMs: 900, ...heard(59_999) }, mid: { totalMs: 300, ...heard(5) }, 'pricey-fast': { totalMs: 80, ...heard(1) } } },
        ['pricey-fast', 'mid', 'cheap-slow'],
      ],
      [
        'latency-optimal: a never-tried provider whose first attempt is under way gets no more requests meanwhile',
        cands,
        { strategy: 'latency-optimal', statsBy: { 'cheap-slow': { totalMs: 900, ...heard(10) }, mid: { lastAttemptAt: NOW - 5 }, 'pricey-fast': { totalMs: 80, ...heard(10) } } },
        ['pricey-fast', 'cheap-slow', 'mid'],
      ],
      [
        'latency-optimal: a re-probe under way (attempt started, no answer yet) is not repeated',
        cands,
        {
          strategy: 'latency-optimal',
          statsBy: { 'cheap-slow': { totalMs: 900, ...heard(60_000), lastAttemptAt: NOW - 5 }, mid: { totalMs: 300, ...heard(5) }, 'pricey-fast': { totalMs: 80, ...heard(1) } },
        },
        ['pricey-fast', 'mid', 'cheap-slow'],
      ],
      [
        'latency-optimal: a draw under the exploration share puts a random other candidate first',
        cands,
        {
          strategy: 'latency-optimal',
          exploration: { share: 0.1, reprobeAfterMs: 60_000 },
          random: sequence(0.05, 0.6),
          statsBy: { 'cheap-slow': { totalMs: 900, ...heard(1) }, mid: { totalMs: 300, ...heard(1) }, 'pricey-fast': { totalMs: 80, ...heard(1) } },
        },
        ['cheap-slow', 'pricey-fast', 'mid'],
      ],
      [
        'latency-optimal: a draw over the exploration share keeps latency order',
        cands,
        {
          strategy: 'latency-optimal',
          exploration: { share: 0.1, reprobeAfterMs: 60_000 },
          random: () => 0.1,
          statsBy: { 'cheap-slow': { totalMs: 900, ...heard(1) }, mid: { totalMs: 300, ...heard(1) }, 'pricey-fast': { totalMs: 80, ...heard(1) } },
        },
        ['pricey-fast', 'mid', 'cheap-slow'],
      ],
      [
        'balanced: price and latency trade off',
        cands,
        { strategy: 'balanced', statsBy: { 'cheap-slow': { totalMs: 2000 }, mid: { totalMs: 200 }, 'pricey-fast': { totalMs: 100 } } },
        ['mid', 'cheap-slow', 'pricey-fast'],
      ],
      [
        'balanced: errors push a provider back',
        cands,
        { strategy: 'balanced', statsBy: { 'cheap-slow': { totalMs: 100, errorRate: 0.9 }, mid: { totalMs: 100 }, 'pricey-fast': { totalMs: 100 } } },
        ['mid', 'pricey-fast', 'cheap-slow'],
      ],
      ['priority: provider priority (lower first)', cands, { strategy: 'priority' }, ['pricey-fast', 'mid', 'cheap-slow']],
      ['priority: a model order list wins over provider priority', cands, { strategy: 'priority', order: ['mid', 'cheap-slow'] }, ['mid', 'cheap-slow', 'pricey-fast']],
      ['weighted: random 0.5 of 95/5 picks the 95', cands, { strategy: 'weighted', weights: { 'cheap-slow': 95, mid: 5, 'pricey-fast': 0 }, random: () => 0.5 }, ['cheap-slow', 'mid', 'pricey-fast']],
      ['weighted: random 0.97 of 95/5 picks the 5', cands, { strategy: 'weighted', weights: { 'cheap-slow': 95, mid: 5, 'pricey-fast': 0 }, random: () => 0.97 }, ['mid', 'cheap-slow', 'pricey-fast']],
      [
        'weighted: weight 0 only ever appears as a fallback',
        cands,
        { strategy: 'weighted', weights: { 'cheap-slow': 0, mid: 0, 'pricey-fast': 1 }, random: () => 0.999999 },
        ['pricey-fast', 'cheap-slow', 'mid'],
      ],
      ['one candidate is its own plan', cands.slice(1, 2), { strategy: 'weighted' }, ['mid']],
    ];
    for (const [name, candidates, over, expected] of table) {
      it(name, () => assert.deepEqual(names(planRoute(candidates, ctx(over))), expected));
    }

    it('weighted 95/5 over 2,000 draws lands within 4 standard deviations of 100 (seeded)', () => {
      const c = ctx({ strategy: 'weighted', weights: { 'cheap-slow': 95, mid: 5, 'pricey-fast': 0 }, random: seeded(42) });
      let minor = 0;
      for (let i = 0; i < 2000; i++) if (planRoute(cands, c)[0].provider.name === 'mid') minor++;
      // Binomial(2000, 0.05): mean 100, sd sqrt(2000*0.05*0.95) = 9.75
      assert.ok(Math.abs(minor - 100) <= 4 * 9.75, `minor share ${minor} of 2000`);
    });
  });

  it('latency-optimal with share 0.05 over 2,000 plans sends about 100 to the slower candidates (seeded)', () => {
    const c = ctx({
      strategy: 'latency-optimal',
      exploration: { share: 0.05, reprobeAfterMs: 60_000 },
      random: seeded(7),
      statsBy: { 'cheap-slow': { totalMs: 900, ...heard(1) }, mid: { totalMs: 300, ...heard(1) }, 'pricey-fast': { totalMs: 80, ...heard(1) } },
    });
    const heads: Record<string, number> = {};
    for (let i = 0; i < 2000; i++) {
      const head = planRoute(cands, c)[0].provider.name;
      heads[head] = (heads[head] ?? 0) + 1;
    }
    const explored = 2000 - heads['pricey-fast'];
    assert.ok(Math.abs(explored - 100) <= 4 * 9.75, `explored ${explored} of 2000`);
    assert.ok(heads.mid > 0 && heads['cheap-slow'] > 0, 'every slower candidate gets some');
  });

  describe('backoff and Retry-After', () => {
    it('retryable statuses are exactly 408, 429, 500, 502, 503, 504', () => {
      const retryable = [400, 401, 403, 404, 408, 409, 422, 429, 500, 501, 502, 503, 504, 505].filter(isRetryableStatus);
      assert.deepEqual(retryable, [408, 429, 500, 502, 503, 504]);
    });
    const delays: Array<[number, number, number]> = [
      [0, 0.5, 50], // ceiling 100
      [1, 0.5, 100], // ceiling 200
      [2, 0.999, 399], // ceiling 400
      [5, 0.5, 1000], // ceiling capped at 2000
      [3, 0, 0], // full jitter can be zero
    ];
    for (const [attempt, r, expected] of delays) {
      it(`full jitter: retry ${attempt}, random ${r} -> ${expected} ms (base 100, max 2000)`, () =>
        assert.equal(
          backoffDelay(attempt, 100, 2000, () => r),
          expected,
        ));
    }
    const now = Date.parse('2026-11-25T12:00:00Z');
    const ra: Array<[Record<string, string>, number | undefined]> = [
      [{ 'retry-after': '2' }, 2000],
      [{ 'retry-after': '0.5' }, 500],
      [{ 'retry-after': 'Wed, 25 Nov 2026 12:00:03 GMT' }, 3000],
      [{ 'retry-after': 'soon' }, undefined],
      [{ 'retry-after-ms': '250', 'retry-after': '9' }, 250],
      [{}, undefined],
    ];
    for (const [headers, expected] of ra) {
      it(`Retry-After ${JSON.stringify(headers)} -> ${expected}`, () => assert.equal(retryAfterMs(headers, now), expected));
    }
    const base = { retriesSoFar: 0, maxRetries: 2, baseMs: 100, maxDelayMs: 1000, retryAfterCapMs: 5000, remainingMs: 10_000, random: () => 0.5 };
    const decisions: Array<[string, Partial<typeof base> & { retryAfterMs?: number }, unknown]> = [
      ['first retry backs off', {}, { retry: true, delayMs: 50 }],
      ['honours Retry-After under the cap', { retryAfterMs: 3000 }, { retry: true, delayMs: 3000 }],
      ['Retry-After over the cap: fail over instead', { retryAfterMs: 6000 }, { retry: false, reason: 'retry-after-too-long' }],
      ['out of retries', { retriesSoFar: 2 }, { retry: false, reason: 'attempts' }],
      ['the wait would pass the deadline', { remainingMs: 40 }, { retry: false, reason: 'deadline' }],
    ];
    for (const [name, over, expected] of decisions) it(`decideRetry: ${name}`, () => assert.deepEqual(decideRetry({ ...base, ...over }), expected));
  });

  describe('circuit breaker transitions', () => {
    const cfg: BreakerSettings = { consecutiveFailures: 3, errorRateThreshold: 0.5, windowMs: 10_000, minRequests: 6, cooldownMs: 1000 };
    type Step = ['ok' | 'fail' | 'attempt', number];
    const run = (steps: Step[]) => steps.reduce((s, [ev, t]) => (ev === 'attempt' ? onAttempt(s, t, cfg) : onResult(s, ev === 'ok', t, cfg)), initialCircuit(0));
    const table: Array<[string, Step[], string]> = [
      [
        'stays closed below the consecutive threshold',
        [
          ['fail', 1],
          ['fail', 2],
        ],
        'closed',
      ],
      [
        'opens after N consecutive failures',
        [
          ['fail', 1],
          ['fail', 2],
          ['fail', 3],
        ],
        'open',
      ],
      [
        'a success resets the consecutive count',
        [
          ['fail', 1],
          ['fail', 2],
          ['ok', 3],
          ['fail', 4],
          ['fail', 5],
        ],
        'closed',
      ],
      [
        'opens on error rate over the window once min requests seen',
        [
          ['fail', 1],
          ['ok', 2],
          ['fail', 3],
          ['ok', 4],
          ['fail', 5],
          ['fail', 6],
        ],
        'open',
      ],
      [
        'error rate resets with a new window',
        [
          ['fail', 1],
          ['ok', 2],
          ['fail', 3],
          ['ok', 4],
          ['fail', 5],
          ['ok', 10_001],
          ['fail', 10_002],
        ],
        'closed',
      ],
      [
        'open -> half-open when a probe goes out after the cooldown',
        [
          ['fail', 1],
          ['fail', 2],
          ['fail', 3],
          ['attempt', 1003],
        ],
        'half-open',
      ],
      [
        'half-open -> closed when the probe succeeds',
        [
          ['fail', 1],
          ['fail', 2],
          ['fail', 3],
          ['attempt', 1003],
          ['ok', 1004],
        ],
        'closed',
      ],
      [
        'half-open -> open when the probe fails',
        [
          ['fail', 1],
          ['fail', 2],
          ['fail', 3],
          ['attempt', 1003],
          ['fail', 1004],
        ],
        'open',
      ],
      [
        'an attempt before the cooldown keeps it open',
        [
          ['fail', 1],
          ['fail', 2],
          ['fail', 3],
          ['attempt', 500],
        ],
        'open',
      ],
    ];
    for (const [name, steps, expected] of table) it(name, () => assert.equal(run(steps).name, expected));

    it('open circuits refuse until the cooldown, and half-open admits one probe at a time', () => {
      const open = run([
        ['fail', 1],
        ['fail', 2],
        ['fail', 3],
      ]);
      assert.equal(canPass(open, 999, cfg), false);
      assert.equal(canPass(open, 1003, cfg), true);
      const probing = onAttempt(open, 1003, cfg);
      assert.equal(canPass(probing, 1004, cfg), false);
    });

    it('CircuitBreakers reports transitions per provider and model, with an injected clock', () => {
      let t = 0;
      const seen: string[] = [];
      const b = new CircuitBreakers(
        cfg,
        () => t,
        (p, m, from, to) => seen.push(`${p}/${m}:${from}->${to}`),
      );
      for (let i = 0; i < 3; i++) b.record('a', 'm', false);
      assert.equal(b.canPass('a', 'm'), false);
      assert.equal(b.canPass('a', 'other'), true, 'state is per model');
      assert.equal(b.retryInMs('a', 'm'), 1000);
      t = 1500;
      b.attempt('a', 'm');
      b.record('a', 'm', true);
      assert.deepEqual(seen, ['a/m:closed->open', 'a/m:open->half-open', 'a/m:half-open->closed']);
    });
  });

  describe('provider stats (EWMA)', () => {
    it('records when an attempt starts, before its outcome', () => {
      let t = 100;
      const s = new StatsTracker(0.5, () => t);
      s.recordAttempt('a', 'm');
      assert.deepEqual(s.get('a', 'm'), { errorRate: 0, samples: 0, lastAttemptAt: 100 });
      t = 250;
      s.recordSuccess('a', 'm', 10, 20);
      assert.equal(s.get('a', 'm').lastAttemptAt, 100);
      assert.equal(s.get('a', 'm').lastSuccessAt, 250);
    });
    it('smooths latency and error rate', () => {
      const s = new StatsTracker(0.5, () => 0);
      s.recordSuccess('a', 'm', 100, 200);
      s.recordSuccess('a', 'm', 300, 400);
      s.recordFailure('a', 'm');
      const st = s.get('a', 'm');
      assert.equal(st.ttfbMs, 200);
      assert.equal(st.totalMs, 300);
      assert.equal(st.errorRate, 0.5);
      assert.equal(st.samples, 3);
    });
  });
});
