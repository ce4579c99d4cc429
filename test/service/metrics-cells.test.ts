/**
 * The per-request metrics count in cells and hand their counts to prom-client when it collects:
 * what a scrape shows must be exactly what prom-client's own metric shows for the same updates,
 * across scrapes, label tuples, values on and past the bucket bounds, and a reset.
 */
import assert from 'node:assert/strict';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { createMetrics } from '../../service/metrics/metrics';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** A deterministic sequence in [0, 1) (a linear congruential generator). */
function sequence(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

/** A sum added up per scrape differs from one added value by value in its last bits only. */
function closeTo(a: number, b: number): void {
  assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${a} vs ${b}`);
}

/** The same lines; counts exactly, sums (and with `amounts`, every value) to the last bits. */
function sameExposition(ours: string, theirs: string, amounts = false): void {
  const [a, b] = [ours.split('\n'), theirs.split('\n')];
  assert.equal(a.length, b.length);
  a.forEach((line, i) => {
    const [x, y] = [/^(\S+) (\S+)$/.exec(line), /^(\S+) (\S+)$/.exec(b[i])];
    if (x && y && x[1] === y[1] && (amounts || x[1].includes('_sum{'))) closeTo(Number(x[2]), Number(y[2]));
    else assert.equal(line, b[i]);
  });
}

describe('metrics counted in cells', () => {
  it('histograms: every scrape equals prom-client observing each value itself', async () => {
    const m = createMetrics(new Registry(), { defaultMetrics: false });
    const plainRegistry = new Registry();
    const plain = new Histogram({
      name: 'aigw_request_duration_seconds',
      help: 'Time from request received to response finished',
      labelNames: ['endpoint', 'provider', 'model', 'stream'],
      buckets: BUCKETS,
      registers: [plainRegistry],
    });
    const tuples = [
      { endpoint: 'chat', provider: 'a', model: 'm1', stream: 'false' },
      { endpoint: 'chat', provider: 'b', model: 'm1', stream: 'true' },
      { endpoint: 'embedding', provider: 'a', model: 'm2', stream: 'false' },
    ];
    const random = sequence(7);
    const scrape = async () => {
      const ours = await m.registry.getSingleMetricAsString('aigw_request_duration_seconds');
      sameExposition(ours, await plainRegistry.getSingleMetricAsString('aigw_request_duration_seconds'));
      const [a, b] = [await m.requestDuration.get(), await plain.get()];
      assert.equal(a.values.length, b.values.length);
      a.values.forEach((v, i) => {
        assert.deepEqual({ ...v, value: 0 }, { ...b.values[i], value: 0 });
        closeTo(v.value, b.values[i].value);
      });
      return ours;
    };
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 500; i++) {
        const labels = { ...tuples[Math.floor(random() * tuples.length)] };
        // On a bound, between bounds, and past the last one (counted in +Inf only).
        const pick = random();
        const value = pick < 0.2 ? BUCKETS[Math.floor(random() * BUCKETS.length)] : pick < 0.95 ? random() * 2 : 121 + random() * 100;
        m.requestDuration.observe(labels, value);
        plain.observe(labels, value);
      }
      const text = await scrape();
      assert.match(text, /aigw_request_duration_seconds_count\{endpoint="chat",provider="a",model="m1",stream="false"\} \d+/);
    }
    // A reset (Registry.resetMetrics) starts every series over; cells counted since go to the new ones.
    m.registry.resetMetrics();
    plainRegistry.resetMetrics();
    m.requestDuration.observe(tuples[0], 0.003);
    plain.observe(tuples[0], 0.003);
    m.requestDuration.observe(tuples[0], 0.2);
    plain.observe(tuples[0], 0.2);
    await scrape();
  });

  it('requests in flight: a plain count, exported as it stands at each scrape', async () => {
    const m = createMetrics();
    const inflight = async () => Number(/^aigw_inflight_requests (\S+)$/m.exec(await m.registry.metrics())?.[1]);
    assert.equal(await inflight(), 0);
    m.inflight.inc();
    m.inflight.inc();
    m.inflight.inc();
    m.inflight.dec();
    assert.equal(await inflight(), 2);
    m.inflight.dec();
    m.inflight.dec();
    assert.equal(await inflight(), 0);
  });

  it('histograms still refuse what prom-client refuses: an unknown label, a value that is not a number', () => {
    const m = createMetrics(new Registry(), { defaultMetrics: false });
    assert.throws(() => m.upstreamLatency.observe({ provider: 'a', model: 'm', phase: 'ttfb', nope: 'x' } as never, 0.1), /Added label "nope" is not included/);
    m.upstreamLatency.observe({ provider: 'a', model: 'm', phase: 'ttfb' }, 0.1);
    assert.throws(() => m.upstreamLatency.observe({ provider: 'a', model: 'm', phase: 'ttfb' }, Number.NaN), /not a valid number/);
  });

  it('counters (whole numbers and USD amounts) and gauges: the same as prom-client setting each value itself', async () => {
    const m = createMetrics(new Registry(), { defaultMetrics: false });
    const plainRegistry = new Registry();
    const labelNames = ['endpoint', 'provider', 'model', 'team', 'project', 'status_class'];
    const counter = new Counter({ name: 'aigw_requests_total', help: 'x', labelNames, registers: [plainRegistry] });
    const gauge = new Gauge({ name: 'aigw_budget_used_ratio', help: 'x', labelNames: ['team', 'period'], registers: [plainRegistry] });
    const random = sequence(11);
    for (let i = 0; i < 300; i++) {
      const labels = { endpoint: 'chat', provider: random() < 0.5 ? 'a' : 'b', model: 'm', team: 't', project: 'p', status_class: random() < 0.9 ? '2xx' : '5xx' };
      m.requests.inc(labels);
      counter.inc(labels);
      const g = { team: random() < 0.5 ? 'red' : 'blue', period: 'daily' };
      const v = random();
      m.budgetUsedRatio.set(g, v);
      gauge.set(g, v);
    }
    const cost = new Counter({ name: 'aigw_cost_usd_total', help: 'x', labelNames: ['provider', 'model', 'team', 'project', 'estimated'], registers: [plainRegistry] });
    for (let i = 0; i < 300; i++) {
      const labels = { provider: random() < 0.5 ? 'a' : 'b', model: 'm', team: 't', project: 'p', estimated: 'false' };
      const usd = random() / 1000;
      m.cost.inc(labels, usd);
      cost.inc(labels, usd);
    }
    const strip = (s: string) => s.replace(/^# HELP .*\n/m, '');
    sameExposition(strip(await m.registry.getSingleMetricAsString('aigw_cost_usd_total')), strip(await plainRegistry.getSingleMetricAsString('aigw_cost_usd_total')), true);
    assert.equal(strip(await m.registry.getSingleMetricAsString('aigw_requests_total')), strip(await plainRegistry.getSingleMetricAsString('aigw_requests_total')));
    assert.equal(strip(await m.registry.getSingleMetricAsString('aigw_budget_used_ratio')), strip(await plainRegistry.getSingleMetricAsString('aigw_budget_used_ratio')));
  });
});
