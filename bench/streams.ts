/**
 * npm run bench -- --streams N [--stream-seconds S]
 *
 * Open streams: N concurrent streaming chat completions held open at once, the fake upstream
 * sending one event per second for S seconds (default 60), first straight to the upstream (its
 * own timer drift, the baseline) and then through one gateway process. Reports, for the gateway:
 * errors, RSS per open stream above its idle RSS (sampled every second while every stream is
 * open), the p99 gap between events minus the upstream's interval, the same figure added over
 * the direct run, and the gateway's event-loop delay p99 over the phase (its own
 * aigw_nodejs_eventloop_lag_p99_seconds, which prom-client resets at each scrape).
 *
 * Each stream holds two sockets in the gateway: N is bounded by its file-descriptor limit
 * (`ulimit -n`), which the phase checks before it starts.
 */
import { spawnSync } from 'node:child_process';
import type { StreamResult, StreamSpec } from './loadgen';
import { cpuOf, metricSum, pct, rssOf, round, sortNum } from './lib';
import { checkRow, streamChecks } from './report';
import { gcCounters, gcPauses, GcPauses, lagMaxMs, lagP99Ms } from './half-peak';
import { CHAT_PATH, MODEL, Target, startGateway, startNodeFloor, startUpstream } from './targets';

export interface StreamsOptions {
  streams: number;
  seconds: number;
  dir: string;
  logFile: string;
}

export interface StreamsResult {
  streams: number;
  seconds: number;
  /** Stream starts were spread evenly over this long (real streams do not start in the same millisecond). */
  rampMs: number;
  errors: number;
  firstError?: string;
  idleRssMb: number;
  openRssMb: number;
  rssPerStreamKb: number | null;
  /** The gateway's V8 heap in use per open stream (its /metrics, idle and once every stream is open): the JS objects' share of the RSS. */
  heapPerStreamKb?: number | null;
  gapP99AddedMs: number | null;
  gapP99AddedOverDirectMs: number | null;
  eventLoopDelayP99Ms: number | null;
  /** The longest event-loop delay over the same window. */
  eventLoopDelayMaxMs?: number | null;
  /** The gateway's GC pauses while every stream was open (its own /metrics). */
  gc?: GcPauses;
  /** The same phase through bench/node-floor.ts (node:http in, undici out, nothing else): what any Node proxy costs here. */
  floor?: { errors: number; rssPerStreamKb: number | null; gapP99AddedMs: number | null; cpuUsPerEvent: number | null };
  /** The gateway's CPU (all threads) per relayed event while every stream is open (each stream one event a second). */
  cpuUsPerEvent: number | null;
}

interface Deps {
  loadgen<T>(spec: StreamSpec, timeoutMs: number): Promise<T>;
  log(msg: string): void;
}

/** The gateway answers a (non-streaming) chat completion: the streams here take S seconds each. */
async function answers(t: Target): Promise<void> {
  const res = await fetch(`${t.base}${CHAT_PATH}`, {
    method: 'POST',
    headers: { ...t.headers, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${t.name}: chat completion answered HTTP ${res.status}: ${text.slice(0, 300)}`);
}

const INTERVAL_MS = 1000;
/** Streams open at this rate (per second): 10,000 streams take 20 s to open, then run side by side. */
const OPEN_PER_SECOND = 500;
export const rampMsFor = (streams: number): number => Math.max(INTERVAL_MS, Math.ceil((streams / OPEN_PER_SECOND) * 1000));

/**
 * Gaps between consecutive events of every stream, minus the interval, in microseconds, sorted.
 * With `firstUs` (each stream's first byte since the phase began) and `fromUs`, only gaps that
 * start once every stream is open: the steady state, not the opening of the others.
 */
export function addedGapsUs(offsets: number[][], intervalMs = INTERVAL_MS, firstUs?: number[], fromUs = 0): number[] {
  const out: number[] = [];
  for (let s = 0; s < offsets.length; s++) {
    const o = offsets[s];
    const base = firstUs?.[s] ?? 0;
    for (let i = 1; i < o.length; i++) {
      if (o[i] === undefined || o[i - 1] === undefined || (firstUs && base + o[i - 1] < fromUs)) continue;
      out.push(o[i] - o[i - 1] - intervalMs * 1000);
    }
  }
  return sortNum(out);
}

export function fdLimit(): number {
  const r = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  return Number(r.stdout.trim()) || Infinity;
}

/** The most streams one proxy process can hold here: two sockets each (client and upstream), plus its own files. */
export const maxStreams = (fds = fdLimit()): number => Math.floor((fds - 200) / 2);

interface Held {
  r: StreamResult;
  rss: number[];
  /** The target's CPU time (µs) and the wall time (ms) at each RSS sample. */
  cpu: Array<{ us: number; at: number }>;
  gapP99Us: number;
}

/** Runs N streams through `t` (opened over the ramp), sampling its RSS every second while all of them are open. */
async function holdStreams(deps: Deps, t: Target, o: StreamsOptions, onAllOpen?: () => Promise<void>): Promise<Held> {
  const rampMs = rampMsFor(o.streams);
  const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Stream slowly.' }], max_tokens: o.seconds + 8, stream: true });
  const spec: StreamSpec = { mode: 'stream', url: `${t.base}${CHAT_PATH}`, headers: t.headers, body, count: o.streams, concurrency: o.streams, warmup: 0, rampMs };
  const rss: number[] = [];
  const cpu: Held['cpu'] = [];
  const t0 = Date.now();
  // Every stream is open from the end of the ramp until the first one ends (S seconds after it began).
  const timer = setInterval(() => {
    const at = Date.now() - t0;
    if (at > rampMs + 1000 && at < o.seconds * 1000 - 1000) {
      rss.push(rssOf(t));
      cpu.push({ us: cpuOf(t), at });
    }
  }, 1000);
  const allOpen = onAllOpen ? setTimeout(() => void onAllOpen().catch(() => undefined), rampMs + 1000) : undefined;
  try {
    const r = await deps.loadgen<StreamResult>(spec, rampMs + o.seconds * 1000 + 120_000);
    return { r, rss, cpu, gapP99Us: pct(addedGapsUs(r.chunkOffsetsUs, INTERVAL_MS, r.firstUs, (rampMs + 1000) * 1000), 99) };
  } finally {
    clearInterval(timer);
    clearTimeout(allOpen);
  }
}

const perStreamKb = (idle: number, h: Held, streams: number) => (h.rss.length ? round(((pct(sortNum(h.rss), 50) - idle) * 1024) / streams, 2) : null);
/** CPU per event between the first and last samples taken with every stream open: each stream sends one event a second. */
export function cpuPerEventUs(cpu: Array<{ us: number; at: number }>, streams: number, intervalMs = INTERVAL_MS): number | null {
  if (cpu.length < 2) return null;
  const [a, b] = [cpu[0], cpu[cpu.length - 1]];
  return round((b.us - a.us) / ((streams * (b.at - a.at)) / intervalMs), 1);
}
const heapUsedMb = (metrics: string) => metricSum(metrics, 'aigw_nodejs_heap_size_used_bytes') / 2 ** 20;
const failures = (h: Held, streams: number) => h.r.errors + (streams - h.r.ok - h.r.errors);

/** The same streams through the bare Node proxy: the floor the gateway's figures are read against. */
async function floorPhase(deps: Deps, upstream: Target, o: StreamsOptions): Promise<StreamsResult['floor']> {
  const floor = await startNodeFloor(upstream, o.streams + 16);
  try {
    await new Promise((r) => setTimeout(r, 500));
    const idle = rssOf(floor);
    deps.log(`streams: through node-floor (idle RSS ${idle.toFixed(1)} MB)`);
    const h = await holdStreams(deps, floor, o);
    return { errors: failures(h, o.streams), rssPerStreamKb: perStreamKb(idle, h, o.streams), gapP99AddedMs: round(h.gapP99Us / 1000, 2), cpuUsPerEvent: cpuPerEventUs(h.cpu, o.streams) };
  } finally {
    for (const pid of floor.pids()) process.kill(pid, 'SIGTERM');
  }
}

export async function streamsPhase(deps: Deps, o: StreamsOptions): Promise<StreamsResult> {
  const most = maxStreams();
  if (o.streams > most) throw new Error(`--streams ${o.streams} needs about ${2 * o.streams + 200} open files in one process; ulimit -n allows ${most} streams`);
  const rampMs = rampMsFor(o.streams);
  const upstream = await startUpstream({ chunks: o.seconds, intervalMs: INTERVAL_MS });
  deps.log(`streams: ${o.streams} streams of ${o.seconds} events, 1 per second, opened over ${rampMs / 1000} s: direct`);
  const direct = await holdStreams(deps, upstream, o);
  const floor = await floorPhase(deps, upstream, o);
  const gateway = await startGateway(upstream, o.dir, o.logFile, { name: 'gateway', maxConnections: o.streams + 16 });
  try {
    await answers(gateway);
    await new Promise((r) => setTimeout(r, 1000));
    const idle = rssOf(gateway);
    deps.log(`streams: through the gateway (idle RSS ${idle.toFixed(1)} MB)`);
    // A scrape resets the event-loop histogram: scraped once every stream is open, then at the end (GC pauses between the two).
    let gc0: { at: number; c: ReturnType<typeof gcCounters>; heap: number } | undefined;
    const scrape = async () => (await fetch(gateway.metricsUrl)).text();
    const idleHeap = heapUsedMb(await scrape());
    const h = await holdStreams(deps, gateway, o, async () => {
      const t = await scrape();
      gc0 = { at: Date.now(), c: gcCounters(t), heap: heapUsedMb(t) };
    });
    const text = await scrape();
    const lag = lagP99Ms(text);
    const gc = gc0 ? gcPauses(gc0.c, gcCounters(text), Date.now() - gc0.at) : undefined;
    const r = h.r;
    return {
      streams: o.streams,
      seconds: o.seconds,
      rampMs,
      errors: failures(h, o.streams),
      ...(r.firstError ? { firstError: r.firstError } : {}),
      idleRssMb: round(idle, 1)!,
      openRssMb: round(h.rss.length ? pct(sortNum(h.rss), 50) : NaN, 1)!,
      rssPerStreamKb: perStreamKb(idle, h, o.streams),
      heapPerStreamKb: gc0 ? round(((gc0.heap - idleHeap) * 1024) / o.streams, 2) : null,
      cpuUsPerEvent: cpuPerEventUs(h.cpu, o.streams),
      gapP99AddedMs: round(h.gapP99Us / 1000, 2),
      gapP99AddedOverDirectMs: round((h.gapP99Us - direct.gapP99Us) / 1000, 2),
      eventLoopDelayP99Ms: round(lag, 2),
      eventLoopDelayMaxMs: round(lagMaxMs(text), 2),
      ...(gc ? { gc } : {}),
      floor,
    };
  } finally {
    await gateway.stop();
    await gateway.redis.close().catch(() => undefined);
    for (const pid of upstream.pids()) process.kill(pid, 'SIGTERM');
  }
}

/** The phase's figures against the targets, as Markdown. */
export function renderStreams(s: StreamsResult): string {
  const rows = streamChecks(s).map(checkRow);
  return [`### Open streams: ${s.streams} streams, one event per second for ${s.seconds} s`, '', '| target | goal | measured | met |', '|---|---|---:|:-:|', ...rows, ''].join('\n');
}
