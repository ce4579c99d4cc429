/**
 * npm run bench -- --cold-start [--rate R] [--window S] [--seconds T] [--rounds N]
 *
 * A new replica's first seconds. Each run starts a fresh process (node-floor, then the gateway) and
 * sends it, open loop, either its full share at once (R requests a second, default 3,000) or the
 * share Envoy's slow start gives an endpoint that has just joined (R x slowStartShare(t, S): 10 %,
 * then linear to all of it at S seconds, default 30; bench/cold-start-model.ts), for T seconds
 * (default 15). Reported per run: the p99 of every half second by the time a request was issued,
 * the worst of them and the first second's. A process that has not yet compiled its request path
 * queues what a warm one serves at once; the stacks' BackendTrafficPolicy (infra/dataPlane.ts)
 * is the slow start measured here.
 */
import type { RateResult, RateSpec } from './loadgen';
import type { LatencyWindow } from './cold-start-model';
import { pct, round } from './lib';
import { CHAT_PATH, Target, startGateway, startNodeFloor, stopTarget } from './targets';

export interface ColdStartDeps {
  dir: string;
  upstream: Target;
  body: string;
  loadgen<T>(spec: RateSpec, timeoutMs: number): Promise<T>;
  log(m: string): void;
}

export interface ColdStartOptions {
  rate: number;
  windowSeconds: number;
  seconds: number;
  rounds: number;
}

export interface ColdStartRow {
  target: string;
  /** 'full' or 'slow start Ss'. */
  schedule: string;
  round: number;
  requests: number;
  errors: number;
  p99Ms: number | null;
  firstSecondP99Ms: number | null;
  worst: { fromMs: number; p99Ms: number | null };
  /** Each half second's p99, ms. */
  windowsP99Ms: (number | null)[];
}

const WINDOW_MS = 500;
const ms = (us: number | null) => (us === null ? null : round(us / 1000, 1));

/** One run's row from the load generator's result. */
export function coldStartRow(target: string, schedule: string, roundNo: number, r: RateResult): ColdStartRow {
  const windows: LatencyWindow[] = r.windows ?? [];
  const worst = windows.reduce<LatencyWindow | undefined>((w, x) => (x.p99Us !== null && (w?.p99Us ?? -1) < x.p99Us ? x : w), undefined);
  return {
    target,
    schedule,
    round: roundNo,
    requests: r.ok,
    errors: r.errors,
    // latenciesUs is sorted (bench/loadgen.ts).
    p99Ms: ms(r.latenciesUs.length ? pct(r.latenciesUs, 99) : null),
    firstSecondP99Ms: ms(firstSecondP99(windows)),
    worst: { fromMs: worst?.fromMs ?? 0, p99Ms: ms(worst?.p99Us ?? null) },
    windowsP99Ms: windows.map((w) => ms(w.p99Us)),
  };
}

/** The first second's p99 from its two windows (the larger: each window's own p99 is all we keep). */
function firstSecondP99(windows: LatencyWindow[]): number | null {
  const first = windows.filter((w) => w.fromMs < 1000 && w.p99Us !== null).map((w) => w.p99Us!);
  return first.length ? Math.max(...first) : null;
}

/** Every round: node-floor and the gateway, each fresh for its full share and fresh again for the slow start. */
export async function coldStartPhase(d: ColdStartDeps, o: ColdStartOptions): Promise<ColdStartRow[]> {
  if (!(o.rate > 0) || !(o.windowSeconds >= 0) || !(o.seconds > 0) || !(o.rounds >= 1))
    throw new Error(`--cold-start: --rate, --seconds and --rounds must be positive and --window at least 0 (got ${JSON.stringify(o)})`);
  const spec = (t: Target, durationMs: number, more: Partial<RateSpec> = {}): RateSpec => ({
    mode: 'rate',
    url: `${t.base}${CHAT_PATH}`,
    headers: t.headers,
    body: d.body,
    rate: o.rate,
    durationMs,
    warmupMs: 0,
    connections: 256,
    ...more,
  });
  // The upstream is not what is measured: warm it first (the first run would otherwise pay for it).
  await d.loadgen<RateResult>(spec(d.upstream, 3000), 60_000);
  const rows: ColdStartRow[] = [];
  const schedules: [string, RateSpec['slowStart']][] = [
    ['full', undefined],
    [`slow start ${o.windowSeconds}s`, { windowSeconds: o.windowSeconds, minShare: 0.1 }],
  ];
  const starters: [string, () => Promise<Target>][] = [
    ['node-floor', () => startNodeFloor(d.upstream)],
    ['gateway', () => startGateway(d.upstream, d.dir, '/dev/null')],
  ];
  for (let roundNo = 1; roundNo <= o.rounds; roundNo++)
    for (const [name, startTarget] of starters)
      for (const [schedule, slowStart] of schedules) {
        const t = await startTarget();
        try {
          const r = await d.loadgen<RateResult>(spec(t, o.seconds * 1000, { slowStart, windowMs: WINDOW_MS }), o.seconds * 1000 + 60_000);
          const row = coldStartRow(name, schedule, roundNo, r);
          d.log(`cold start: ${name}, ${schedule}, round ${roundNo}: p99 ${row.p99Ms} ms, worst half second ${row.worst.p99Ms} ms at ${row.worst.fromMs / 1000} s`);
          rows.push(row);
        } finally {
          await stopTarget(t);
        }
      }
  return rows;
}

export function renderColdStart(rows: ColdStartRow[], o: ColdStartOptions): string {
  const lines = [
    `### A new process's first ${o.seconds} s: its full ${o.rate.toLocaleString('en-US')} req/s at once, or Envoy's slow start over ${o.windowSeconds} s`,
    '',
    'Each run a fresh process, open loop; p99 of the requests issued in each half second.',
    '',
    '| target | schedule | round | requests | errors | p99, ms | first second p99 (its worse half), ms | worst half second p99, ms (at) | each half second p99, ms |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows)
    lines.push(
      `| ${r.target} | ${r.schedule} | ${r.round} | ${r.requests} | ${r.errors} | ${r.p99Ms ?? '–'} | ${r.firstSecondP99Ms ?? '–'} | ${r.worst.p99Ms ?? '–'} (${r.worst.fromMs / 1000} s) | ${r.windowsP99Ms.map((x) => x ?? '–').join(', ')} |`,
    );
  return `${lines.join('\n')}\n`;
}
