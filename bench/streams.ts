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
import { metricSum, pct, rssMb, round, sortNum } from './lib';
import { CHAT_PATH, GatewayTarget, MODEL, Target, startGateway, startUpstream } from './targets';

export interface StreamsOptions {
  streams: number;
  seconds: number;
  dir: string;
  logFile: string;
}

export interface StreamsResult {
  streams: number;
  seconds: number;
  errors: number;
  firstError?: string;
  idleRssMb: number;
  openRssMb: number;
  rssPerStreamKb: number | null;
  gapP99AddedMs: number | null;
  gapP99AddedOverDirectMs: number | null;
  eventLoopDelayP99Ms: number | null;
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

/** Gaps between consecutive events of every stream, minus the interval, in microseconds, sorted. */
export function addedGapsUs(offsets: number[][], intervalMs = INTERVAL_MS): number[] {
  const out: number[] = [];
  for (const o of offsets) for (let i = 1; i < o.length; i++) if (o[i] !== undefined && o[i - 1] !== undefined) out.push(o[i] - o[i - 1] - intervalMs * 1000);
  return sortNum(out);
}

function fdLimit(): number {
  const r = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' });
  return Number(r.stdout.trim()) || Infinity;
}

const rssOf = (t: Target) => t.pids().reduce((s, pid) => s + rssMb(pid), 0);

/** Runs N streams through `t`, sampling its RSS every second from `openFromMs` on. */
async function holdStreams(deps: Deps, t: Target, o: StreamsOptions): Promise<{ r: StreamResult; rss: number[] }> {
  const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Stream slowly.' }], max_tokens: o.seconds + 8, stream: true });
  const spec: StreamSpec = { mode: 'stream', url: `${t.base}${CHAT_PATH}`, headers: t.headers, body, count: o.streams, concurrency: o.streams, warmup: 0 };
  const rss: number[] = [];
  const t0 = Date.now();
  // Streams are all open from about a quarter of the phase until about its last event.
  const timer = setInterval(() => {
    const at = Date.now() - t0;
    if (at > o.seconds * 250 && at < o.seconds * 900) rss.push(rssOf(t));
  }, 1000);
  try {
    const r = await deps.loadgen<StreamResult>(spec, o.seconds * 1000 + 120_000);
    return { r, rss };
  } finally {
    clearInterval(timer);
  }
}

const lagP99Ms = async (g: GatewayTarget) => metricSum(await (await fetch(g.metricsUrl)).text(), 'aigw_nodejs_eventloop_lag_p99_seconds') * 1000;

export async function streamsPhase(deps: Deps, o: StreamsOptions): Promise<StreamsResult> {
  const fds = fdLimit();
  if (2 * o.streams + 200 > fds) throw new Error(`--streams ${o.streams} needs about ${2 * o.streams + 200} open files in the gateway; ulimit -n is ${fds}`);
  const upstream = await startUpstream({ chunks: o.seconds, intervalMs: INTERVAL_MS });
  deps.log(`streams: ${o.streams} streams of ${o.seconds} events, 1 per second: direct`);
  const direct = await holdStreams(deps, upstream, o);
  const gateway = await startGateway(upstream, o.dir, o.logFile, { name: 'gateway', maxConnections: o.streams + 16 });
  try {
    await answers(gateway);
    await new Promise((r) => setTimeout(r, 1000));
    const idle = rssOf(gateway);
    await lagP99Ms(gateway); // a scrape resets the event-loop histogram: the phase starts clean
    deps.log(`streams: through the gateway (idle RSS ${idle.toFixed(1)} MB)`);
    const { r, rss } = await holdStreams(deps, gateway, o);
    const lag = await lagP99Ms(gateway);
    const open = rss.length ? pct(sortNum(rss), 50) : NaN;
    const gw = pct(addedGapsUs(r.chunkOffsetsUs), 99);
    const base = pct(addedGapsUs(direct.r.chunkOffsetsUs), 99);
    return {
      streams: o.streams,
      seconds: o.seconds,
      errors: r.errors + (o.streams - r.ok - r.errors),
      ...(r.firstError ? { firstError: r.firstError } : {}),
      idleRssMb: round(idle, 1)!,
      openRssMb: round(open, 1)!,
      rssPerStreamKb: round(((open - idle) * 1024) / o.streams, 2),
      gapP99AddedMs: round(gw / 1000, 2),
      gapP99AddedOverDirectMs: round((gw - base) / 1000, 2),
      eventLoopDelayP99Ms: round(lag, 2),
    };
  } finally {
    await gateway.stop();
    await gateway.redis.close().catch(() => undefined);
  }
}

/** The phase's figures against the issue's targets, as Markdown. */
export function renderStreams(s: StreamsResult): string {
  const yes = (ok: boolean) => (ok ? 'yes' : '**no**');
  return [
    `### Open streams: ${s.streams} streams, one event per second for ${s.seconds} s`,
    '',
    '| figure | goal | measured | met |',
    '|---|---:|---:|:-:|',
    `| errors | 0 | ${s.errors}${s.firstError ? ` (${s.firstError})` : ''} | ${yes(s.errors === 0)} |`,
    `| RSS per open stream above idle (idle ${s.idleRssMb} MB, open ${s.openRssMb} MB) | <= 16 KB | ${s.rssPerStreamKb} KB | ${yes((s.rssPerStreamKb ?? Infinity) <= 16)} |`,
    `| added gap between events, p99 (over the interval; over direct) | <= 5 ms | ${s.gapP99AddedMs} ms; ${s.gapP99AddedOverDirectMs} ms | ${yes((s.gapP99AddedMs ?? Infinity) <= 5)} |`,
    `| gateway event-loop delay p99 | reported | ${s.eventLoopDelayP99Ms} ms | – |`,
    '',
  ].join('\n');
}
