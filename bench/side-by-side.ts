/**
 * The frame of the side-by-side comparisons (`--relay-cpu`, `--request-cpu`, `--first-byte`): node-floor, this build
 * and, with --baseline, a gateway built from GIT_REF, all behind one fake upstream; one warm-up
 * pass each (JIT, pools, heap size), then rounds in which the targets alternate (reversed every
 * other round, so neither always goes first); per target the median of its rounds and its ratio
 * over node-floor's median.
 */
import { pct, round, sortNum } from './lib';
import { startGateway, startNodeFloor, startUpstream, stopTarget, Target, UpstreamOptions } from './targets';
import { buildBaseline } from './tracing';

export interface SideBySideOptions extends TargetsOptions {
  rounds: number;
  /** One round through a target: its figure, µs (CPU per request or event, a first-byte p50). */
  once(t: Target): Promise<number>;
  /** What a round's figure is, for the log ("µs/request", "µs first byte"). */
  unit: string;
}

export interface SideBySideRow {
  target: string;
  /** The figure, µs, of each round. */
  rounds: number[];
  medianUs: number | null;
  /** The median over node-floor's median. */
  overFloor: number | null;
  /** The median minus node-floor's median, µs. */
  minusFloorUs: number | null;
}

/** Medians and ratios over node-floor (pure). */
export function sideBySideRows(perTarget: Map<string, number[]>): SideBySideRow[] {
  const median = (xs: number[]) => (xs.length ? pct(sortNum(xs), 50) : NaN);
  const floor = median(perTarget.get('node-floor') ?? []);
  return [...perTarget].map(([target, rounds]) => ({
    target,
    rounds: rounds.map((x) => round(x, 1) ?? 0),
    medianUs: round(median(rounds), 1),
    overFloor: round(median(rounds) / floor, 2),
    minusFloorUs: round(median(rounds) - floor, 1),
  }));
}

/** A Markdown table of the rows; `vs`: each median against node-floor's as a ratio (CPU) or a difference (latency). */
export function renderSideBySide(title: string, unit: string, rows: SideBySideRow[], vs: 'ratio' | 'difference' = 'ratio'): string {
  const lines = [
    `### ${title}`,
    '',
    `| target | median ${unit} | ${vs === 'ratio' ? 'x node-floor' : 'minus node-floor, µs'} | rounds |`,
    '|---|---:|---:|---|',
    ...rows.map((r) => `| ${r.target} | ${r.medianUs ?? '–'} | ${(vs === 'ratio' ? r.overFloor : r.minusFloorUs) ?? '–'} | ${r.rounds.join(', ')} |`),
  ];
  return `${lines.join('\n')}\n`;
}

/** What the three targets are started with: the fake upstream, connections each may hold, and node flags for every target. */
export interface TargetsOptions {
  dir: string;
  baseline?: string;
  upstream: UpstreamOptions;
  /** Connections node-floor and the gateways may hold to the upstream. */
  maxConnections?: number;
  nodeArgs?: string[];
  log(m: string): void;
}

/** Starts the upstream, node-floor, the baseline gateway (with --baseline) and this build; runs `fn`; stops them all. */
export async function withTargets<T>(o: TargetsOptions, fn: (targets: Target[]) => Promise<T>): Promise<T> {
  const upstream = await startUpstream(o.upstream);
  const { maxConnections, nodeArgs } = o;
  const targets: Target[] = [];
  try {
    targets.push(await startNodeFloor(upstream, maxConnections, nodeArgs));
    if (o.baseline) targets.push(await startGateway(upstream, o.dir, '/dev/null', { name: 'gateway-base', main: buildBaseline(o.baseline, o.dir, o.log), maxConnections, nodeArgs }));
    targets.push(await startGateway(upstream, o.dir, '/dev/null', { name: 'gateway', maxConnections, nodeArgs }));
    return await fn(targets);
  } finally {
    for (const t of targets) await stopTarget(t).catch(() => undefined);
    for (const pid of upstream.pids()) process.kill(pid, 'SIGTERM');
  }
}

export function sideBySide(o: SideBySideOptions): Promise<SideBySideRow[]> {
  return withTargets(o, async (targets) => {
    const perTarget = new Map<string, number[]>(targets.map((t) => [t.name, []]));
    for (const t of targets) await o.once(t);
    for (let r = 0; r < o.rounds; r++) {
      for (const t of r % 2 ? [...targets].reverse() : targets) {
        const us = await o.once(t);
        perTarget.get(t.name)!.push(us);
        o.log(`round ${r + 1}: ${t.name} ${us.toFixed(1)} ${o.unit}`);
      }
    }
    return sideBySideRows(perTarget);
  });
}
