/**
 * Every metric the gateway exports, named once. Labels are bounded: provider, model and
 * team/project come from config (unknown model names never become labels), status is a class.
 */
import { readdir, stat } from 'node:fs/promises';
import { Counter, CounterConfiguration, Gauge, GaugeConfiguration, Histogram, HistogramConfiguration, Registry, collectDefaultMetrics } from 'prom-client';

type LabelObject = Partial<Record<string, string | number>>;
interface Cell {
  labels: LabelObject;
  /** Counters: increments not yet handed to prom-client. Gauges: the last value set. */
  value: number;
  /** Changed since prom-client last collected. */
  dirty: boolean;
}

/**
 * One cell per label tuple, found with one Map lookup per label value (in labelNames order):
 * no label string is built, sorted or hashed, and nothing is validated, on the hot path.
 */
class TupleCells<C extends { labels: LabelObject } = Cell> {
  private readonly root = new Map<unknown, unknown>();
  readonly all: C[] = [];

  constructor(
    private readonly names: readonly string[],
    private readonly make: (labels: LabelObject) => C = (labels) => ({ labels, value: 0, dirty: false }) as unknown as C,
  ) {}

  /** This tuple's cell; undefined the first time the tuple is seen (the cell is created then). */
  find(labels: LabelObject): C | undefined {
    const names = this.names;
    if (names.length === 0) return undefined;
    let m = this.root;
    const last = names.length - 1;
    for (let i = 0; i < last; i++) {
      const v = labels[names[i]];
      let next = m.get(v) as Map<unknown, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        m.set(v, next);
      }
      m = next;
    }
    const v = labels[names[last]];
    const cell = m.get(v) as C | undefined;
    if (cell === undefined) {
      const created = this.make({ ...labels });
      m.set(v, created);
      this.all.push(created);
    }
    return cell;
  }

  /** The cell made the first time, right after find() answered undefined for these labels. */
  latest(): C {
    return this.all[this.all.length - 1];
  }
}

const isLabels = (x: unknown): x is LabelObject => typeof x === 'object' && x !== null;

type Update = (labels: unknown, value?: number) => void;

/**
 * Routes `update` (a metric's inc or set) through per-tuple cells: the first update of a label
 * tuple goes to prom-client as is (validating the labels and creating the series); later ones
 * only change the tuple's cell (`accept`ed values only), and reach prom-client when it collects
 * the metric (every scrape, every get()), so what is exported is unchanged. Returns the collect
 * function, and `install` puts the routed update in place once the metric exists.
 */
function cellRouted(names: readonly string[] | undefined, accept: (value: number | undefined) => boolean, apply: (cell: Cell, value: number | undefined) => void, counts: boolean) {
  const cells = new TupleCells(names ?? []);
  let direct: Update = () => {};
  return {
    collect() {
      for (const c of cells.all) {
        if (!c.dirty) continue;
        const v = c.value;
        c.dirty = false;
        if (counts) c.value = 0;
        direct(c.labels, v);
      }
    },
    install(original: Update): Update {
      direct = original;
      return (labels, value) => {
        if (isLabels(labels) && accept(value)) {
          const cell = cells.find(labels);
          if (cell) {
            apply(cell, value);
            cell.dirty = true;
            return;
          }
        }
        direct(labels, value);
      };
    },
  };
}

/**
 * A counter incremented on every request. Whole numbers by default (integer sums are exact in
 * any order); `amounts: true` takes any finite amount >= 0 (USD), whose sum then differs from
 * one added amount by amount in its last bits only, as a histogram's sum does.
 */
function requestCounter<T extends string>(cfg: CounterConfiguration<T>, amounts = false): Counter<T> {
  const r = cellRouted(
    cfg.labelNames,
    (v) => v === undefined || (amounts ? Number.isFinite(v) && v >= 0 : Number.isInteger(v) && v >= 0),
    (c, v) => (c.value += v ?? 1),
    true,
  );
  const counter = new Counter<T>({ ...cfg, collect: r.collect });
  counter.inc = r.install(counter.inc.bind(counter) as Update) as Counter<T>['inc'];
  return counter;
}

/** A gauge only ever set (never incremented) on every request: the last value per tuple is exported. */
function requestGauge<T extends string>(cfg: GaugeConfiguration<T>): Gauge<T> {
  const r = cellRouted(
    cfg.labelNames,
    (v) => typeof v === 'number',
    (c, v) => (c.value = v!),
    false,
  );
  const gauge = new Gauge<T>({ ...cfg, collect: r.collect });
  gauge.set = r.install(gauge.set.bind(gauge) as Update) as Gauge<T>['set'];
  return gauge;
}

/** A gauge of one count moved up and down on every request (requests in flight): a plain number, set on prom-client's gauge when it collects. */
function countGauge(cfg: GaugeConfiguration<string>): Gauge {
  let count = 0;
  const gauge = new Gauge({
    ...cfg,
    collect() {
      this.set(count);
    },
  });
  gauge.inc = ((v: number = 1) => void (count += v)) as Gauge['inc'];
  gauge.dec = ((v: number = 1) => void (count -= v)) as Gauge['dec'];
  return gauge;
}

/** prom-client's state of one histogram series (lib/histogram.js, createBaseValues), which collect() adds a tuple's observations to. */
interface SeriesValues {
  labels: LabelObject;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

interface HistogramCell {
  labels: LabelObject;
  /** Observations not yet handed to prom-client, per bucket (not cumulative); over the last bound they count in `count` only. */
  counts: number[];
  sum: number;
  count: number;
  /** The series prom-client made for this tuple, and the map it was found in (a reset makes a new map). */
  series?: SeriesValues;
  seriesOf?: object;
}

/**
 * A histogram observed on every request: its tuples' observations are counted in cells (a bucket
 * index and two additions) and added to prom-client's own series when it collects the metric
 * (every scrape, every get()), so what is exported is what prom-client's observe() would have
 * made. prom-client's observe builds, sorts and hashes a label string and validates the labels
 * each time (~0.7 µs, three a request). The first observation of a tuple goes through prom-client
 * (validating the labels and creating the series); a series prom-client does not hold in the
 * expected shape (another version) makes every observation go through prom-client again.
 */
function requestHistogram<T extends string>(cfg: HistogramConfiguration<T> & { buckets: number[] }): Histogram<T> {
  const bounds = cfg.buckets;
  const cells = new TupleCells<HistogramCell>(cfg.labelNames ?? [], (labels) => ({ labels, counts: bounds.map(() => 0), sum: 0, count: 0 }));
  let routed = (cfg.labelNames ?? []).length > 0;
  const histogram: Histogram<T> = new Histogram<T>({
    ...cfg,
    collect() {
      const map = (histogram as unknown as { hashMap?: Record<string, SeriesValues> }).hashMap;
      for (const c of cells.all) if (c.count) flushCell(histogram, c, map, bounds);
    },
  });
  const direct = histogram.observe.bind(histogram) as (labels: unknown, value?: number) => void;
  histogram.observe = ((labels: unknown, value?: number) => {
    if (routed && isLabels(labels) && typeof value === 'number' && Number.isFinite(value)) {
      const cell = cells.find(labels);
      if (cell) return countIn(cell, bounds, value);
      // A new tuple: prom-client validates it and makes its series (for this very labels object).
      const created = cells.latest();
      direct(created.labels, value);
      if (!seriesOf(histogram, created.labels)) routed = false; // not prom-client's shape: observe directly from now on
      return;
    }
    direct(labels, value);
  }) as Histogram<T>['observe'];
  return histogram;
}

function countIn(cell: HistogramCell, bounds: number[], value: number): void {
  cell.sum += value;
  cell.count++;
  for (let i = 0; i < bounds.length; i++) {
    if (value <= bounds[i]) {
      cell.counts[i]++;
      return;
    }
  }
}

/** The series prom-client holds for exactly these labels (the object it was given), when it holds it as expected. */
function seriesOf(histogram: Histogram<string>, labels: LabelObject): SeriesValues | undefined {
  const map = (histogram as unknown as { hashMap?: Record<string, SeriesValues> }).hashMap;
  if (!map || typeof map !== 'object') return undefined;
  for (const k in map) {
    const v = map[k];
    if (v.labels === labels) return typeof v.sum === 'number' && typeof v.count === 'number' && v.bucketValues && typeof v.bucketValues === 'object' ? v : undefined;
  }
  return undefined;
}

function flushCell(histogram: Histogram<string>, c: HistogramCell, map: object | undefined, bounds: number[]): void {
  if (c.seriesOf !== map || !c.series) {
    // First flush, or prom-client's series were reset since: find (or make) this tuple's series.
    c.series = seriesOf(histogram, c.labels);
    if (!c.series) {
      histogram.zero(c.labels);
      c.series = seriesOf(histogram, c.labels);
    }
    c.seriesOf = map;
    if (!c.series) return;
  }
  const s = c.series;
  s.sum += c.sum;
  s.count += c.count;
  for (let i = 0; i < bounds.length; i++) {
    if (c.counts[i]) s.bucketValues[bounds[i]] += c.counts[i];
    c.counts[i] = 0;
  }
  c.sum = 0;
  c.count = 0;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Requests, as the client saw them. */
function requestMetrics(r: Registry[]) {
  return {
    requests: requestCounter({
      name: 'aigw_requests_total',
      help: 'Client requests by endpoint, provider that served them, model, team, project and status class',
      labelNames: ['endpoint', 'provider', 'model', 'team', 'project', 'status_class'] as const,
      registers: r,
    }),
    requestDuration: requestHistogram({
      name: 'aigw_request_duration_seconds',
      help: 'Time from request received to response finished',
      labelNames: ['endpoint', 'provider', 'model', 'stream'] as const,
      buckets: LATENCY_BUCKETS,
      registers: r,
    }),
    streamTtfb: requestHistogram({
      name: 'aigw_stream_time_to_first_byte_seconds',
      help: 'Time from request received to the first streamed byte sent to the client',
      labelNames: ['provider', 'model'] as const,
      buckets: LATENCY_BUCKETS,
      registers: r,
    }),
    inflight: countGauge({ name: 'aigw_inflight_requests', help: 'Requests being served right now', registers: r }),
    clientDisconnects: new Counter({
      name: 'aigw_client_disconnects_total',
      help: 'Requests whose client went away before the response finished (upstream aborted)',
      labelNames: ['endpoint'] as const,
      registers: r,
    }),
  };
}

/** Usage and cost. */
function costMetrics(r: Registry[]) {
  return {
    tokens: requestCounter({ name: 'aigw_tokens_total', help: 'Tokens by direction (input/output)', labelNames: ['provider', 'model', 'team', 'project', 'direction'] as const, registers: r }),
    cost: requestCounter(
      { name: 'aigw_cost_usd_total', help: 'Spend in USD at configured provider prices', labelNames: ['provider', 'model', 'team', 'project', 'estimated'] as const, registers: r },
      true,
    ),
    savings: requestCounter(
      {
        name: 'aigw_savings_usd_total',
        help: 'USD saved against the model list price (routing) or by serving from cache',
        labelNames: ['model', 'team', 'project', 'reason'] as const,
        registers: r,
      },
      true,
    ),
  };
}

/** Upstream behaviour. */
function upstreamMetrics(r: Registry[]) {
  return {
    upstreamAttempts: requestCounter({ name: 'aigw_upstream_attempts_total', help: 'Attempts sent to providers, by outcome', labelNames: ['provider', 'model', 'outcome'] as const, registers: r }),
    upstreamLatency: requestHistogram({
      name: 'aigw_upstream_latency_seconds',
      help: 'Provider latency per attempt: time to first byte (ttfb) and total',
      labelNames: ['provider', 'model', 'phase'] as const,
      buckets: LATENCY_BUCKETS,
      registers: r,
    }),
    retries: new Counter({ name: 'aigw_retries_total', help: 'Retries of the same provider', labelNames: ['provider', 'model', 'reason'] as const, registers: r }),
    failovers: new Counter({
      name: 'aigw_failovers_total',
      help: 'Moves from one provider to the next candidate',
      labelNames: ['from_provider', 'to_provider', 'model', 'reason'] as const,
      registers: r,
    }),
    streamInterruptions: new Counter({
      name: 'aigw_stream_interruptions_total',
      help: 'Streams cut by the upstream after the first byte reached the client',
      labelNames: ['provider', 'model'] as const,
      registers: r,
    }),
    streamEventsDropped: new Counter({
      name: 'aigw_stream_events_dropped_total',
      help: 'Unreadable upstream stream events skipped (the stream went on)',
      labelNames: ['provider', 'model'] as const,
      registers: r,
    }),
    streamContinuations: new Counter({
      name: 'aigw_stream_continuations_total',
      help: 'Broken streams continued on another provider (continued: by that provider) or not (failed, ineligible: by the provider that broke)',
      labelNames: ['provider', 'outcome'] as const,
      registers: r,
    }),
    circuitState: new Gauge({
      name: 'aigw_circuit_state',
      help: 'Circuit breaker state per provider and model: 0 closed, 1 half-open, 2 open',
      labelNames: ['provider', 'model'] as const,
      registers: r,
    }),
    circuitTransitions: new Counter({ name: 'aigw_circuit_transitions_total', help: 'Circuit breaker state changes', labelNames: ['provider', 'model', 'from', 'to'] as const, registers: r }),
    providerUnhealthy: requestGauge({
      name: 'aigw_provider_unhealthy',
      help: '1 when a provider answered 401/403 (bad provider key) until it answers successfully',
      labelNames: ['provider'] as const,
      registers: r,
    }),
  };
}

/** Tenancy. */
function tenancyMetrics(r: Registry[]) {
  return {
    rateLimitFallbacks: new Counter({
      name: 'aigw_rate_limit_fallbacks_total',
      help: 'Requests whose request limit was decided by the per-replica in-memory window (limit / expected_replicas) because Redis did not answer',
      labelNames: ['scope'] as const,
      registers: r,
    }),
    rateLimited: new Counter({ name: 'aigw_rate_limited_total', help: 'Requests refused by a rate limit', labelNames: ['scope', 'kind'] as const, registers: r }),
    authFailures: new Counter({ name: 'aigw_auth_failures_total', help: 'Requests refused for a missing or unknown key', labelNames: ['reason'] as const, registers: r }),
    budgetRejections: new Counter({ name: 'aigw_budget_rejections_total', help: 'Requests refused because a team budget is spent', labelNames: ['team', 'period'] as const, registers: r }),
    budgetUsedRatio: requestGauge({ name: 'aigw_budget_used_ratio', help: 'Fraction of the team budget spent in the current period', labelNames: ['team', 'period'] as const, registers: r }),
    budgetAlert: requestGauge({ name: 'aigw_budget_alert', help: '1 when a team has spent more than its alert threshold of a budget', labelNames: ['team', 'period'] as const, registers: r }),
  };
}

/** Cache and redis. */
function redisMetrics(r: Registry[]) {
  return {
    cacheRequests: new Counter({ name: 'aigw_cache_requests_total', help: 'Response cache lookups by result (hit, miss, bypass, error)', labelNames: ['result'] as const, registers: r }),
    redisUp: new Gauge({ name: 'aigw_redis_up', help: '1 when the gateway reaches Redis', registers: r }),
    redisErrors: new Counter({ name: 'aigw_redis_errors_total', help: 'Redis calls that failed or timed out (the gateway fell back)', labelNames: ['operation'] as const, registers: r }),
    redisCommands: new Counter({
      name: 'aigw_redis_commands_total',
      help: 'Commands sent to Redis (a script counts once; the rate over aigw_requests_total is Redis commands per request)',
      labelNames: ['role'] as const,
      registers: r,
    }),
    spendBuffered: new Gauge({ name: 'aigw_spend_buffered_entries', help: 'Spend entries held in memory while Redis is unreachable', registers: r }),
  };
}

export const GC_BUCKETS_SECONDS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 1];

/**
 * prom-client's process_open_fds lists /proc/self/fd with readdirSync at every scrape: 17-60 ms
 * with the event loop stopped at 19,000 descriptors (two a stream at 10,000 open streams), so
 * every scrape delayed every stream's next event. The same gauge, read off the event loop: the
 * size Linux (6.2 and later) reports for /proc/self/fd is the count; on older kernels (size 0)
 * the directory is listed, asynchronously (the names still reach the event loop as an array).
 */
function openFdsGauge(registry: Registry): void {
  const name = 'aigw_process_open_fds';
  if (process.platform !== 'linux' || !registry.getSingleMetric(name)) return;
  registry.removeSingleMetric(name);
  new Gauge({
    name,
    help: 'Number of open file descriptors.',
    registers: [registry],
    async collect() {
      const counted = (await stat('/proc/self/fd').catch(() => undefined))?.size;
      if (counted) return this.set(counted);
      const fds = await readdir('/proc/self/fd').catch(() => undefined);
      if (fds) this.set(fds.length - 1); // the descriptor the listing itself used is closed again
    },
  });
}

/**
 * prom-client's active handle and resource gauges build, at every scrape, an array of every libuv
 * handle (twice each: per type and total) and count them by name: 40 ms with the event loop
 * stopped at 19,800 handles (two sockets a stream at 9,900 open streams), so every scrape delayed
 * every stream's next event. The open descriptors (aigw_process_open_fds) and the requests in
 * flight (aigw_inflight_requests) tell the same story without it; these four are not exported.
 */
export const PER_HANDLE_GAUGES = ['aigw_nodejs_active_handles', 'aigw_nodejs_active_handles_total', 'aigw_nodejs_active_resources', 'aigw_nodejs_active_resources_total'];

export function createMetrics(registry: Registry = new Registry(), opts: { defaultMetrics?: boolean } = {}) {
  // GC pauses in buckets fine enough to tell a 2 ms scavenge from a 20 ms mark-compact (the default starts at 1 ms, then 10 ms).
  if (opts.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry, prefix: 'aigw_', gcDurationBuckets: GC_BUCKETS_SECONDS });
    openFdsGauge(registry);
    for (const name of PER_HANDLE_GAUGES) registry.removeSingleMetric(name);
  }
  const r = [registry];
  return {
    registry,
    ...requestMetrics(r),
    ...costMetrics(r),
    ...upstreamMetrics(r),
    ...tenancyMetrics(r),
    ...redisMetrics(r),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

export const statusClass = (status: number): string => `${Math.floor(status / 100)}xx`;
