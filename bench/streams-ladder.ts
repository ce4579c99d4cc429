/**
 * npm run bench -- --streams N1,N2,... [--stream-seconds S]
 *
 * The open-streams phase (bench/streams.ts) at each N, smallest first, and the largest N at which
 * each of the goals holds, for the gateway and for node-floor (what any Node proxy reaches
 * on this machine): zero errors, RSS per open stream above idle <= 16 KB, added p99 gap between
 * events <= 5 ms, and all three together. A goal that holds at no N tried is reported as such, not
 * as the smallest N.
 */
import type { StreamsResult } from './streams';

/** The open-streams goals (issue 26), each a test of one phase's figures. */
export const STREAM_GOALS = {
  'zero errors': (f: Figures) => f.errors === 0,
  'RSS per stream <= 16 KB': (f: Figures) => f.rssPerStreamKb !== null && f.rssPerStreamKb <= 16,
  'added gap p99 <= 5 ms': (f: Figures) => f.gapP99AddedMs !== null && f.gapP99AddedMs <= 5,
} as const;

type Figures = Pick<StreamsResult, 'errors' | 'rssPerStreamKb' | 'gapP99AddedMs'>;
export type StreamGoal = keyof typeof STREAM_GOALS | 'all three';

/** Whether one phase's figures meet `goal` (bench/report.ts judges the full run's phase with it too). */
export const holds = (goal: StreamGoal, f: Figures): boolean => (goal === 'all three' ? Object.values(STREAM_GOALS).every((g) => g(f)) : STREAM_GOALS[goal](f));

/**
 * The largest N at which `goal` holds, counting only Ns below which it held at every N tried too
 * (a goal met at 5,000 but missed at 2,500 did not "hold up to" 5,000); null when it held at none.
 */
export function largestHolding(runs: Array<{ streams: number; figures: Figures }>, goal: StreamGoal): number | null {
  let best: number | null = null;
  for (const r of [...runs].sort((a, b) => a.streams - b.streams)) {
    if (!holds(goal, r.figures)) break;
    best = r.streams;
  }
  return best;
}

/** The Ns of a `--streams` value: one number, or several separated by commas (sorted, distinct). */
export function parseStreamCounts(value: string): number[] {
  const ns = value.split(',').map((s) => Number(s.trim()));
  if (!ns.length || ns.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--streams ${value}: expected positive integers separated by commas`);
  return [...new Set(ns)].sort((a, b) => a - b);
}

const floorFigures = (s: StreamsResult): Figures | null => (s.floor ? { errors: s.floor.errors, rssPerStreamKb: s.floor.rssPerStreamKb, gapP99AddedMs: s.floor.gapP99AddedMs } : null);

const fmt = (n: number | null): string => (n === null ? 'none of those tried' : n.toLocaleString('en-US'));

/** The runs, one row each, then the largest N per goal for the gateway and node-floor, as Markdown. */
export function renderLadder(runs: StreamsResult[]): string {
  const seconds = runs[0]?.seconds;
  const lines = [
    `### Open streams at ${runs.map((r) => r.streams.toLocaleString('en-US')).join(', ')} (one event a second for ${seconds} s)`,
    '',
    '| streams | errors (node-floor) | RSS per stream, KB (node-floor) | added gap p99, ms (node-floor) | CPU per event, µs (node-floor) | event-loop delay p99 / max, ms |',
    '|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of runs) {
    const f = r.floor;
    lines.push(
      `| ${r.streams.toLocaleString('en-US')} | ${r.errors} (${f?.errors ?? '–'}) | ${r.rssPerStreamKb ?? '–'} (${f?.rssPerStreamKb ?? '–'}) | ${r.gapP99AddedMs ?? '–'} (${f?.gapP99AddedMs ?? '–'}) | ${r.cpuUsPerEvent ?? '–'} (${f?.cpuUsPerEvent ?? '–'}) | ${r.eventLoopDelayP99Ms ?? '–'} / ${r.eventLoopDelayMaxMs ?? '–'} |`,
    );
  }
  const gw = runs.map((r) => ({ streams: r.streams, figures: r as Figures }));
  const nf = runs.flatMap((r) => {
    const figures = floorFigures(r);
    return figures ? [{ streams: r.streams, figures }] : [];
  });
  lines.push('', '| largest N that holds | gateway | node-floor |', '|---|---:|---:|');
  for (const goal of [...(Object.keys(STREAM_GOALS) as StreamGoal[]), 'all three' as const]) {
    lines.push(`| ${goal} | ${fmt(largestHolding(gw, goal))} | ${nf.length ? fmt(largestHolding(nf, goal)) : '–'} |`);
  }
  return `${lines.join('\n')}\n`;
}
