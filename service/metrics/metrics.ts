/**
 * Every metric the gateway exports, named once. Labels are bounded: provider, model and
 * team/project come from config (unknown model names never become labels), status is a class.
 */
import { readdir } from 'node:fs/promises';
import { Counter, CounterConfiguration, Gauge, GaugeConfiguration, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
class TupleCells {
  private readonly root = new Map<unknown, unknown>();
  readonly all: Cell[] = [];

  constructor(private readonly names: readonly string[]) {}

  /** This tuple's cell; undefined the first time the tuple is seen (the cell is created then). */
  find(labels: LabelObject): Cell | undefined {
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
    const cell = m.get(v) as Cell | undefined;
    if (cell === undefined) {
      const created: Cell = { labels: { ...labels }, value: 0, dirty: false };
      m.set(v, created);
      this.all.push(created);
    }
    return cell;
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

/** A counter incremented by whole numbers on every request (integer sums are exact in any order). */
function requestCounter<T extends string>(cfg: CounterConfiguration<T>): Counter<T> {
  const r = cellRouted(
    cfg.labelNames,
    (v) => v === undefined || (Number.isInteger(v) && v >= 0),
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
    requestDuration: new Histogram({
      name: 'aigw_request_duration_seconds',
      help: 'Time from request received to response finished',
      labelNames: ['endpoint', 'provider', 'model', 'stream'] as const,
      buckets: LATENCY_BUCKETS,
      registers: r,
    }),
    streamTtfb: new Histogram({
      name: 'aigw_stream_time_to_first_byte_seconds',
      help: 'Time from request received to the first streamed byte sent to the client',
      labelNames: ['provider', 'model'] as const,
      buckets: LATENCY_BUCKETS,
      registers: r,
    }),
    inflight: new Gauge({ name: 'aigw_inflight_requests', help: 'Requests being served right now', registers: r }),
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
    cost: new Counter({ name: 'aigw_cost_usd_total', help: 'Spend in USD at configured provider prices', labelNames: ['provider', 'model', 'team', 'project', 'estimated'] as const, registers: r }),
    savings: new Counter({
      name: 'aigw_savings_usd_total',
      help: 'USD saved against the model list price (routing) or by serving from cache',
      labelNames: ['model', 'team', 'project', 'reason'] as const,
      registers: r,
    }),
  };
}

/** Upstream behaviour. */
function upstreamMetrics(r: Registry[]) {
  return {
    upstreamAttempts: requestCounter({ name: 'aigw_upstream_attempts_total', help: 'Attempts sent to providers, by outcome', labelNames: ['provider', 'model', 'outcome'] as const, registers: r }),
    upstreamLatency: new Histogram({
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
 * every scrape delayed every stream's next event. The same gauge, read off the event loop.
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
      const fds = await readdir('/proc/self/fd').catch(() => undefined);
      if (fds) this.set(fds.length - 1); // the descriptor the listing itself used is closed again
    },
  });
}

export function createMetrics(registry: Registry = new Registry(), opts: { defaultMetrics?: boolean } = {}) {
  // GC pauses in buckets fine enough to tell a 2 ms scavenge from a 20 ms mark-compact (the default starts at 1 ms, then 10 ms).
  if (opts.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry, prefix: 'aigw_', gcDurationBuckets: GC_BUCKETS_SECONDS });
    openFdsGauge(registry);
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
