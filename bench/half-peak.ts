/**
 * The tail at half the gateway's own peak: the gateway and node-floor (and the upstream
 * directly, the baseline) at the same open-loop rate, alternating; for the gateway also its
 * event-loop delay p99 and its GC pauses over the phase (its own /metrics), to tell a tail
 * caused by the collector or a blocked loop from one caused by the machine's shared cores.
 */
import type { RateResult, RateSpec } from './loadgen';
import { metricSum, pct, round, sortNum } from './lib';
import { isolate } from './cores';
import { CHAT_PATH, GatewayTarget, Target } from './targets';

export interface GcPauses {
  count: number;
  totalMs: number;
  /** Share of the phase's wall time spent in GC pauses, %. */
  sharePct: number;
  over2ms: number;
  over10ms: number;
  /** Pauses over 100 ms: each holds every open stream's next event that long. */
  over100ms: number;
  /** Time in full (mark-compact) collections, ms. */
  majorMs: number;
  /**
   * Full (mark-compact) collections. Each is a cycle: marking on V8's helper threads, then a pause
   * of a few ms; on a busy core those threads hold the core for tens of ms, which the pause does
   * not show and the loop's longest delay does (docs/bench.md, "the half-peak tail is the old
   * generation's cycle").
   */
  majorCount?: number;
}

/** One line for a phase's GC pauses. */
export const gcText = (g: GcPauses): string =>
  `GC ${g.count} pauses, ${g.totalMs} ms (${g.sharePct}% of the time; mark-compact ${g.majorCount === undefined ? '' : `${g.majorCount} times, `}${g.majorMs} ms), ${g.over2ms} over 2 ms, ${g.over10ms} over 10 ms, ${g.over100ms} over 100 ms`;

export interface HalfPeakResult {
  rate: number;
  /** Per target: p50 / p99 in µs over every round, errors. */
  latency: Record<string, { p50Us: number; p99Us: number; errors: number; cpuUsPerRequest: number; /** Each round's own p99: one stalled window shows here. */ roundP99Us?: number[] }>;
  eventLoopDelayP99Ms: number;
  /** The gateway's longest event-loop delay in any round (ms): a mark-compact cycle's stall shows here, not in the p99. */
  eventLoopDelayMaxMs?: number;
  gc: GcPauses;
}

interface Deps {
  loadgen<T>(spec: RateSpec, timeoutMs: number): Promise<T>;
  cpuOf(t: Target): number;
  log(msg: string): void;
}

/** GC pause counters from a /metrics text (prom-client's histogram; every kind of collection). */
export function gcCounters(text: string): { count: number; sumS: number; le2ms: number; le10ms: number; le100ms: number; majorS: number; majorCount: number } {
  const name = 'aigw_nodejs_gc_duration_seconds';
  return {
    count: metricSum(text, `${name}_count`),
    sumS: metricSum(text, `${name}_sum`),
    le2ms: metricSum(text, `${name}_bucket`, 'le="0.002"'),
    le10ms: metricSum(text, `${name}_bucket`, 'le="0.01"'),
    le100ms: metricSum(text, `${name}_bucket`, 'le="0.1"'),
    majorS: metricSum(text, `${name}_sum`, 'kind="major"'),
    majorCount: metricSum(text, `${name}_count`, 'kind="major"'),
  };
}

export function gcPauses(a: ReturnType<typeof gcCounters>, b: ReturnType<typeof gcCounters>, wallMs: number): GcPauses {
  const count = b.count - a.count;
  const totalMs = (b.sumS - a.sumS) * 1000;
  return {
    count,
    totalMs: round(totalMs, 1)!,
    sharePct: round((totalMs / Math.max(1, wallMs)) * 100, 2)!,
    over2ms: count - (b.le2ms - a.le2ms),
    over10ms: count - (b.le10ms - a.le10ms),
    over100ms: count - (b.le100ms - a.le100ms),
    majorMs: round((b.majorS - a.majorS) * 1000, 1)!,
    majorCount: b.majorCount - a.majorCount,
  };
}

const scrape = async (g: GatewayTarget) => (await fetch(g.metricsUrl)).text();
/**
 * prom-client samples the loop with perf_hooks' monitorEventLoopDelay at its default 10 ms resolution,
 * and that histogram holds the whole time between two ticks of its timer: an idle loop reads ~10 ms
 * (p50 10.1, p99 10.4 ms here). The delay is what exceeds it.
 */
export const LAG_RESOLUTION_MS = 10;
const lagOver = (seconds: number) => Math.max(0, seconds * 1000 - LAG_RESOLUTION_MS);
/** The event-loop delay p99 (ms) since the previous scrape (prom-client resets the histogram at each). */
export const lagP99Ms = (text: string): number => lagOver(metricSum(text, 'aigw_nodejs_eventloop_lag_p99_seconds'));
/** The longest event-loop delay (ms) since the previous scrape: one stall that a p99 cannot show. */
export const lagMaxMs = (text: string): number => lagOver(metricSum(text, 'aigw_nodejs_eventloop_lag_max_seconds'));

export interface HalfPeakOptions {
  targets: Target[];
  gateway: GatewayTarget;
  rate: number;
  rounds: number;
  durationMs: number;
  warmupMs: number;
  body: string;
  /** In the log line: which placement of the processes this was. */
  label?: string;
}

/**
 * The same phase with the proxies (gateway, node-floor) on one core and the upstream and Redis on
 * the other (bench/cores.ts); `deps.loadgen` must start the load generator there too. Every process
 * goes back on the CPUs it had afterwards (isolate() reads them before placing it).
 */
export async function isolatedHalfPeakPhase(deps: Deps, o: HalfPeakOptions, placement: { proxies: number[]; others: number[] }): Promise<HalfPeakResult> {
  const undo = isolate(placement.proxies, placement.others);
  try {
    return await halfPeakPhase(deps, { ...o, label: o.label ?? 'isolated' });
  } finally {
    undo();
  }
}

export async function halfPeakPhase(deps: Deps, o: HalfPeakOptions): Promise<HalfPeakResult> {
  const acc: Record<string, { lat: number[]; rounds: number[]; errors: number; cpu: number; issued: number }> = {};
  let lagP99 = 0;
  let lagMax = 0;
  let gc0 = gcCounters(await scrape(o.gateway));
  const gc = { count: 0, totalMs: 0, wallMs: 0, over2ms: 0, over10ms: 0, over100ms: 0, majorMs: 0, majorCount: 0 };
  for (let pass = 0; pass < o.rounds; pass++) {
    for (const t of o.targets.map((_x, i, xs) => xs[(i + pass) % xs.length])) {
      const isGateway = t.name === o.gateway.name;
      if (isGateway) await scrape(o.gateway); // resets the event-loop histogram: the phase starts clean
      if (isGateway) gc0 = gcCounters(await scrape(o.gateway));
      const cpu0 = deps.cpuOf(t);
      const t0 = Date.now();
      const spec: RateSpec = { mode: 'rate', url: `${t.base}${CHAT_PATH}`, headers: t.headers, body: o.body, rate: o.rate, durationMs: o.durationMs, warmupMs: o.warmupMs, connections: 50 };
      const r = await deps.loadgen<RateResult>(spec, o.durationMs + o.warmupMs + 30_000);
      const a = (acc[t.name] ??= { lat: [], rounds: [], errors: 0, cpu: 0, issued: 0 });
      a.rounds.push(pct(r.latenciesUs, 99)); // the generator's latencies come sorted
      a.cpu += deps.cpuOf(t) - cpu0;
      a.issued += r.issuedTotal;
      a.lat.push(...r.latenciesUs);
      a.errors += r.errors;
      if (!isGateway) continue;
      const text = await scrape(o.gateway);
      lagP99 = Math.max(lagP99, lagP99Ms(text));
      lagMax = Math.max(lagMax, lagMaxMs(text));
      const p = gcPauses(gc0, gcCounters(text), Date.now() - t0);
      gc.count += p.count;
      gc.totalMs += p.totalMs;
      gc.wallMs += Date.now() - t0;
      gc.over2ms += p.over2ms;
      gc.over10ms += p.over10ms;
      gc.over100ms += p.over100ms;
      gc.majorMs += p.majorMs;
      gc.majorCount += p.majorCount ?? 0;
    }
  }
  const latency: HalfPeakResult['latency'] = {};
  for (const [name, a] of Object.entries(acc)) {
    const lat = sortNum(a.lat);
    latency[name] = { p50Us: pct(lat, 50), p99Us: pct(lat, 99), errors: a.errors, cpuUsPerRequest: round(a.cpu / Math.max(1, a.issued), 1)!, roundP99Us: a.rounds };
  }
  const out: HalfPeakResult = {
    rate: o.rate,
    latency,
    eventLoopDelayP99Ms: round(lagP99, 2)!,
    eventLoopDelayMaxMs: round(lagMax, 2)!,
    gc: { ...gc, totalMs: round(gc.totalMs, 1)!, sharePct: round((gc.totalMs / Math.max(1, gc.wallMs)) * 100, 2)!, majorMs: round(gc.majorMs, 1)! },
  };
  deps.log(
    `half peak${o.label ? `, ${o.label}` : ''} ${o.rate}/s: ${Object.entries(latency)
      .map(([n, v]) => `${n} p50 ${(v.p50Us / 1000).toFixed(2)} p99 ${(v.p99Us / 1000).toFixed(2)} ms`)
      .join('; ')}; gateway event-loop delay p99 ${out.eventLoopDelayP99Ms} ms (max ${out.eventLoopDelayMaxMs}), ${gcText(out.gc)}`,
  );
  return out;
}
