/**
 * npm run bench [-- --quick] [-- --out FILE] [-- --log-file FILE] [-- --keep]
 * npm run bench -- --profile     (gateway only, node --cpu-prof, prints the hot spots)
 * npm run bench -- --all-limits  (also tokens per minute, team limits and limit rules of every kind on the gateway)
 * npm run bench -- --streams N[,N2,...] [--stream-seconds S]  (only the open-streams phase: bench/streams.ts; several Ns: the largest N each goal holds at, bench/streams-ladder.ts)
 * npm run bench -- --relay-cpu [--baseline REF] [--rounds N] [--relay-streams S]  (CPU per relayed stream event: bench/relay-cpu.ts)
 * npm run bench -- --tracing [--baseline REF] [--rounds N]  (tracing off and on, side by side: bench/tracing.ts)
 * npm run bench -- --stream-text  (the heap a stream's kept text holds, in-process: bench/stream-text.ts)
 * npm run bench -- --stream-heap [--streams N] [--prompt-kb K] [--baseline REF]  (JS heap per open stream, heap snapshots: bench/stream-heap.ts)
 * npm run bench -- --socket-floor [--streams N]  (RSS per open stream of node:http, undici and plain TCP sockets alone: bench/socket-floor.ts)
 * npm run bench -- --half-peak [--rate R] [--rounds N]  (the tail at half the gateway's peak, every core shared and each proxy on a core of its own: bench/half-peak.ts, bench/cores.ts)
 *
 * Side by side, in one run, on 127.0.0.1, each in its own process: a fast fake OpenAI
 * upstream called directly, the gateway (compiled dist/, auth + Redis rate limits +
 * budgets + cost + metrics + one info log line per request), nginx proxy_pass and the
 * Portkey gateway (each when installed: `npm run bench:setup`). Load comes from other
 * processes: wrk (or autocannon when wrk is missing) for peak throughput and the soak,
 * bench/loadgen.ts for fixed rates and streams. Targets alternate within each round.
 *
 * Prints a Markdown table and writes bench/results/latest.json and latest.md.
 * Ratios are the headline: the machine is shared and its absolute numbers are noisy.
 */
import { execSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import Redis from 'ioredis';
import { dirname, join } from 'node:path';
import type { RateResult, RateSpec, StreamResult, StreamSpec } from './loadgen';
import { relayCpuPhase, renderRelayCpu } from './relay-cpu';
import { renderRequestCpu, requestCpuPhase } from './request-cpu';
import { firstBytePhase, renderFirstByte } from './first-byte';
import { cpuOf, hasCommand, metricSum, pct, rssOf, run, round, sortNum, stopAll } from './lib';
import { summarise } from './profile-summary';
import { renderHalfPeak, renderMarkdown, Results, StreamStats, evaluateTargets } from './report';
import { CHAT_PATH, GatewayTarget, MODEL, ROOT, startGateway, startNginx, startNodeFloor, startPortkey, startUpstream, Target, TargetName } from './targets';
import { tracingComparison } from './tracing';
import { gcComparison } from './gc';
import { maxStreams, renderStreams, streamsPhase, StreamsResult } from './streams';
import { parseStreamCounts, renderLadder } from './streams-ladder';
import { renderStreamText, streamTextPhase } from './stream-text';
import { renderStreamHeap, streamHeapPhase } from './stream-heap';
import { HalfPeakOptions, HalfPeakResult, halfPeakPhase, isolatedHalfPeakPhase } from './half-peak';
import { cannotIsolate, onCpus, OTHER_CPUS, PlacementError } from './cores';
import { chatBodyOfSize } from './prompts';
import { coldStartPhase, renderColdStart } from './cold-start';
import { maxSocketFloorStreams, renderSocketFloor, socketFloorPhase } from './socket-floor';

interface Options {
  quick: boolean;
  /** Profile mode: only the gateway under wrk, with node --cpu-prof, then a summary of the hot spots. */
  profile: boolean;
  gc: boolean;
  /** Also token-per-minute and team-level limits on the gateway. */
  allLimits: boolean;
  /** Only the open-streams phase: this many streams, of streamSeconds events each (several: bench/streams-ladder.ts). */
  streams?: number[];
  streamSeconds: number;
  /** Leave the open-streams phase out of the full run (it takes about 4 minutes at 10,000 streams). */
  skipStreams: boolean;
  /** Only CPU per relayed stream event (bench/relay-cpu.ts), through relayStreams streams at once. */
  relayCpu: boolean;
  relayStreams: number;
  /** Only CPU per request at peak (bench/request-cpu.ts), `seconds` of wrk per target and round, bodies of about promptKb KB (0: a short prompt). */
  requestCpu: boolean;
  seconds: number;
  /** Only the text a stream keeps (bench/stream-text.ts, in-process). */
  streamText: boolean;
  /** Only the JS heap per open stream from heap snapshots (bench/stream-heap.ts): `streams` of them, prompts of promptKb. */
  streamHeap: boolean;
  /** Only the RSS per open stream of node:http and undici alone (bench/socket-floor.ts), `streams` of them per process. */
  socketFloor: boolean;
  promptKb: number;
  /** Only the half-peak phase (bench/half-peak.ts), every core shared and then each proxy on a core of its own, at `rate` (default: half the gateway's peak). */
  halfPeak: boolean;
  rate?: number;
  /** Only the stream first byte (bench/first-byte.ts), `concurrency` streams at a time. */
  firstByte: boolean;
  concurrency: number;
  /** Only a new process's first seconds (bench/cold-start.ts): its full `rate` at once or a slow start over `window` seconds, for `seconds`. */
  coldStart: boolean;
  window: number;
  /** Tracing off vs on (100% sampled, exporting to a local sink), side by side. */
  tracing: boolean;
  /** With --tracing, --gc, --relay-cpu, --request-cpu or --first-byte: a git ref built and run as another gateway. */
  baseline?: string;
  /** With --tracing (default 3, --quick 2), --relay-cpu, --request-cpu or --first-byte (default 5): rounds of each phase. */
  rounds?: number;
  out: string;
  logFile: string;
  keep: boolean;
}

function parseOptions(argv: string[]): Options {
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  if (argv.includes('--help')) {
    process.stdout.write(
      'usage: npm run bench [-- --quick] [--out FILE.json] [--log-file FILE] [--keep] [--profile] [--gc [--baseline REF]] [--all-limits] [--tracing [--baseline REF] [--rounds N]] [--streams N[,N2,...] [--stream-seconds S]] [--skip-streams] [--relay-cpu [--baseline REF] [--rounds N] [--relay-streams S]] [--request-cpu [--baseline REF] [--rounds N] [--seconds S] [--prompt-kb K]] [--first-byte [--baseline REF] [--rounds N] [--concurrency C] [--prompt-kb K]] [--stream-text] [--stream-heap [--streams N] [--prompt-kb K] [--baseline REF]] [--socket-floor [--streams N]] [--half-peak [--rate R] [--rounds N]] [--cold-start [--rate R] [--window S] [--seconds T] [--rounds N]]\n',
    );
    process.exit(0);
  }
  return {
    quick: argv.includes('--quick'),
    profile: argv.includes('--profile'),
    gc: argv.includes('--gc'),
    allLimits: argv.includes('--all-limits'),
    tracing: argv.includes('--tracing'),
    baseline: value('--baseline'),
    rounds: value('--rounds') ? Number(value('--rounds')) : undefined,
    streams: value('--streams') ? parseStreamCounts(value('--streams')!) : undefined,
    streamSeconds: Number(value('--stream-seconds') ?? (argv.includes('--quick') ? 15 : 60)),
    skipStreams: argv.includes('--skip-streams'),
    relayCpu: argv.includes('--relay-cpu'),
    relayStreams: Number(value('--relay-streams') ?? 100),
    requestCpu: argv.includes('--request-cpu'),
    seconds: Number(value('--seconds') ?? (argv.includes('--cold-start') ? 15 : 5)),
    firstByte: argv.includes('--first-byte'),
    halfPeak: argv.includes('--half-peak'),
    coldStart: argv.includes('--cold-start'),
    window: Number(value('--window') ?? 30),
    rate: value('--rate') ? Number(value('--rate')) : undefined,
    streamText: argv.includes('--stream-text'),
    streamHeap: argv.includes('--stream-heap'),
    socketFloor: argv.includes('--socket-floor'),
    promptKb: Number(value('--prompt-kb') ?? 0),
    concurrency: Number(value('--concurrency') ?? 1),
    out: value('--out') ?? join(ROOT, 'bench/results/latest.json'),
    logFile: value('--log-file') ?? '/dev/null',
    keep: argv.includes('--keep'),
  };
}

/** Durations and counts; --quick shrinks them for iteration (the numbers get noisier). */
function plan(quick: boolean) {
  return quick
    ? { rounds: 1, peakSeconds: 3, warmupSeconds: 1, rateMs: 2500, rateWarmupMs: 500, streams: 30, soakWarmup: 5_000, soak: 20_000, openStreams: 1000, firstByteRounds: 1 }
    : { rounds: 2, peakSeconds: 6, warmupSeconds: 2, rateMs: 5000, rateWarmupMs: 1000, streams: 100, soakWarmup: 20_000, soak: 110_000, openStreams: 10_000, firstByteRounds: 3 };
}

const RATES = [500, 1000, 2000];
/** The conversation size of the full run's long-prompt CPU phase, KB. */
const PROMPT_KB = 100;
/** Streams per process in the socket-floor phase: as many as the open-streams phase holds (two sockets each in one process there, one here). */
const SOCKET_FLOOR_STREAMS = 9900;
/** Streams at once in the kept-text phase (bench/stream-text.ts). */
const STREAM_TEXT_STREAMS = 500;
const STREAM = { chunks: 20, intervalMs: 5, concurrency: 10 };
const BODY = chatBodyOfSize(0);
const STREAM_BODY = chatBodyOfSize(0, true);

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

function buildIfStale(): void {
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((m, e) => {
      const p = join(dir, e.name);
      return Math.max(m, e.isDirectory() ? newest(p) : e.name.endsWith('.ts') ? statSync(p).mtimeMs : 0);
    }, 0);
  let built = 0;
  try {
    built = statSync(join(ROOT, 'dist/service/main.js')).mtimeMs;
  } catch {
    /* never built */
  }
  if (built >= newest(join(ROOT, 'service'))) return;
  log('dist/ is older than service/: building (tsc)');
  try {
    execSync('npx tsc -p tsconfig.json', { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  } catch {
    // tsc still emits on type errors (someone else's work in progress); only a missing entry point stops us.
    statSync(join(ROOT, 'dist/service/main.js'));
    log('tsc reported errors; benchmarking what it emitted');
  }
}

/** A sanity call per target: a 200 chat completion and a stream with [DONE]; returns the non-streaming response headers. */
async function check(t: Target): Promise<Record<string, string>> {
  const init = (body: string) => ({ method: 'POST', headers: { ...t.headers, 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(10_000) });
  const res = await fetch(`${t.base}${CHAT_PATH}`, init(BODY));
  const text = await res.text();
  if (res.status !== 200 || !text.includes('"choices"')) throw new Error(`${t.name}: chat completion answered HTTP ${res.status}: ${text.slice(0, 300)}`);
  const s = await fetch(`${t.base}${CHAT_PATH}`, init(STREAM_BODY));
  const st = await s.text();
  if (s.status !== 200 || !st.includes('[DONE]') || !st.includes(`tok${STREAM.chunks - 1}`)) throw new Error(`${t.name}: stream answered HTTP ${s.status}: ${st.slice(0, 300)}`);
  return Object.fromEntries(res.headers);
}

// ---------------------------------------------------------------- load tools

interface PeakRun {
  rps: number;
  requests: number;
  non2xx: number;
  socketErrors: number;
  cpuUs: number;
  p50Ms?: number;
  p99Ms?: number;
}

const wrkScripts = new Map<string, string>();

/** A wrk Lua script posting `body` with the target's headers (one per target instance and body: a gateway started again has another key). */
function wrkScript(dir: string, t: Target, body: string): string {
  const key = `${t.name}-${new URL(t.base).port}-${createHash('sha256').update(body).digest('hex').slice(0, 12)}`;
  let file = wrkScripts.get(key);
  if (file) return file;
  const headers = Object.entries({ ...t.headers, 'content-type': 'application/json' })
    .map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
    .join('\n');
  file = join(dir, `wrk-${key}.lua`);
  writeFileSync(file, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\n${headers}\n`);
  wrkScripts.set(key, file);
  return file;
}

const WRK_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60000 };
const wrkMs = (out: string, label: string) => {
  const m = new RegExp(`^\\s+${label}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
  return m ? Number(m[1]) * WRK_UNITS[m[2]] : undefined;
};

/** Closed-loop load with 50 connections for `seconds`: wrk when installed, else autocannon. */
async function closedLoop(dir: string, t: Target, seconds: number, body = BODY): Promise<PeakRun> {
  const url = `${t.base}${CHAT_PATH}`;
  const cpu0 = cpuOf(t);
  let r: PeakRun;
  if (hasCommand('wrk')) {
    const out = await run('wrk', ['-t1', '-c50', `-d${seconds}s`, '--latency', '-s', wrkScript(dir, t, body), url], (seconds + 30) * 1000);
    const rps = /Requests\/sec:\s+([\d.]+)/.exec(out.stdout);
    if (out.code !== 0 || !rps) throw new Error(`wrk against ${t.name} failed: ${out.stderr || out.stdout}`);
    r = {
      rps: Number(rps[1]),
      requests: Number(/(\d+) requests in/.exec(out.stdout)?.[1] ?? 0),
      non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out.stdout)?.[1] ?? 0),
      socketErrors: (/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out.stdout) ?? []).slice(1).reduce((s, x) => s + Number(x), 0),
      cpuUs: 0,
      p50Ms: wrkMs(out.stdout, '50'),
      p99Ms: wrkMs(out.stdout, '99'),
    };
  } else {
    const headers = Object.entries({ ...t.headers, 'content-type': 'application/json' }).flatMap(([k, v]) => ['-H', `${k}=${v}`]);
    const out = await run(
      process.execPath,
      [join(ROOT, 'node_modules/autocannon/autocannon.js'), '-c', '50', '-d', String(seconds), '-m', 'POST', '-b', body, ...headers, '-j', url],
      (seconds + 60) * 1000,
    );
    if (out.code !== 0) throw new Error(`autocannon against ${t.name} failed: ${out.stderr}`);
    const j = JSON.parse(out.stdout) as { requests: { average: number; total: number }; non2xx: number; errors: number; latency: { p50: number; p99: number } };
    r = { rps: j.requests.average, requests: j.requests.total, non2xx: j.non2xx, socketErrors: j.errors, cpuUs: 0, p50Ms: j.latency.p50, p99Ms: j.latency.p99 };
  }
  r.cpuUs = cpuOf(t) - cpu0;
  return r;
}

/** Closed-loop load until at least `count` requests were served (wrk cannot stop on a count: runs sized from the rate seen). */
async function closedLoopCount(dir: string, t: Target, count: number, expectedRps: number): Promise<PeakRun> {
  const total: PeakRun = { rps: 0, requests: 0, non2xx: 0, socketErrors: 0, cpuUs: 0 };
  let seconds = 0;
  while (total.requests < count) {
    const rps = total.requests ? total.requests / seconds : expectedRps;
    const s = Math.max(1, Math.min(120, Math.ceil(((count - total.requests) / Math.max(1, rps)) * 1.05)));
    const r = await closedLoop(dir, t, s);
    if (!r.requests) throw new Error(`no request got through ${t.name}`);
    seconds += s;
    total.requests += r.requests;
    total.non2xx += r.non2xx;
    total.socketErrors += r.socketErrors;
    total.cpuUs += r.cpuUs;
  }
  total.rps = total.requests / seconds;
  return total;
}

/** A single-phase run's result: JSON to `out` (with the date and Node version), Markdown to stdout. */
function report(out: string, results: Record<string, unknown>, markdown: string): void {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, ...results }, null, 2)}\n`);
  process.stdout.write(markdown);
}

async function loadgen<T>(spec: RateSpec | StreamSpec, timeoutMs: number, onCores?: string): Promise<T> {
  const [cmd, ...args] = [...(onCores ? onCpus(onCores) : []), process.execPath, '-r', 'tsx/cjs', join(ROOT, 'bench/loadgen.ts'), JSON.stringify(spec)];
  const out = await run(cmd, args, timeoutMs, { cwd: ROOT });
  if (out.code !== 0) throw new Error(`loadgen failed (${out.code}): ${out.stderr}`);
  return JSON.parse(out.stdout) as T;
}

/** Runs `fn` while sampling the target's RSS every 250 ms; returns the result and the peak RSS. */
async function withRss<T>(t: Target, fn: () => Promise<T>): Promise<[T, number]> {
  let peak = rssOf(t);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssOf(t));
    } catch {
      /* process gone: reported by fn */
    }
  }, 250);
  try {
    return [await fn(), peak];
  } finally {
    clearInterval(timer);
  }
}

// ---------------------------------------------------------------- phases

const rotate = <T>(xs: T[], n: number) => xs.map((_x, i) => xs[(i + n) % xs.length]);

/** The half-peak phase again with each proxy on a core of its own (bench/cores.ts), or undefined (saying why) where processes cannot be placed. */
async function halfPeakIsolated(o: HalfPeakOptions, upstream: Target, floor: Target): Promise<HalfPeakResult | undefined> {
  const why = cannotIsolate();
  if (why) {
    log(`half peak, isolated: skipped (${why})`);
    return undefined;
  }
  const redisPid = o.gateway.redis.pid();
  const placement = { proxies: [...o.gateway.pids(), ...floor.pids()], others: [...upstream.pids(), ...(redisPid ? [redisPid] : [])] };
  try {
    return await isolatedHalfPeakPhase({ loadgen: (spec, timeoutMs) => loadgen(spec, timeoutMs, OTHER_CPUS), cpuOf, log }, o, placement);
  } catch (err) {
    // A machine that will not place processes loses this row, not the run.
    if (!(err instanceof PlacementError)) throw err;
    log(`half peak, isolated: skipped (${err.message})`);
    return undefined;
  }
}

/** `--half-peak`: the upstream, node-floor and a gateway; the gateway's peak (unless --rate); then the half-peak phase shared and isolated. */
async function halfPeakOnly(dir: string, opts: Options): Promise<{ halfPeak: HalfPeakResult; halfPeakIsolated?: HalfPeakResult }> {
  if (opts.rate !== undefined && !(opts.rate > 0 && Number.isFinite(opts.rate))) throw new Error(`--rate: expected requests a second (a positive number), got "${opts.rate}"`);
  const upstream = await startUpstream({ chunks: STREAM.chunks, intervalMs: STREAM.intervalMs });
  const floor = await startNodeFloor(upstream);
  const gateway = await startGateway(upstream, dir, opts.logFile, { allLimits: opts.allLimits });
  try {
    for (const t of [upstream, floor, gateway]) await closedLoop(dir, t, 2);
    const rate = opts.rate ?? Math.round((await closedLoop(dir, gateway, 6)).rps / 2);
    const o = { targets: [upstream, gateway, floor], gateway, rate, rounds: opts.rounds ?? 3, durationMs: 5000, warmupMs: 1000, body: BODY };
    const halfPeak = await halfPeakPhase({ loadgen, cpuOf, log }, o);
    return { halfPeak, halfPeakIsolated: await halfPeakIsolated(o, upstream, floor) };
  } finally {
    await gateway.stop();
    await gateway.redis.close();
  }
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const p = plan(opts.quick);
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'aigw-bench-'));
  let gateway: GatewayTarget | undefined;
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await stopAll();
    await gateway?.redis.close().catch(() => undefined);
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: stopping every process the benchmark started`);
      void cleanup().finally(() => process.exit(130));
    });
  }

  try {
    buildIfStale();
    if (opts.relayCpu) {
      const rows = await relayCpuPhase({ dir, loadgen, log }, { rounds: opts.rounds ?? 5, streams: opts.relayStreams, baseline: opts.baseline });
      return report(opts.out, { relayCpu: rows }, renderRelayCpu(rows, opts.relayStreams));
    }
    if (opts.requestCpu) {
      const rows = await requestCpuPhase({ dir, closedLoop, log }, { rounds: opts.rounds ?? 5, seconds: opts.seconds, baseline: opts.baseline, body: chatBodyOfSize(opts.promptKb) });
      return report(opts.out, { requestCpu: rows }, renderRequestCpu(rows, opts.seconds, opts.promptKb));
    }
    if (opts.firstByte) {
      const rows = await firstBytePhase({ dir, loadgen, log }, { rounds: opts.rounds ?? 5, concurrency: opts.concurrency, baseline: opts.baseline, promptKb: opts.promptKb });
      return report(opts.out, { firstByte: rows }, renderFirstByte(rows, opts.concurrency, opts.promptKb));
    }
    if (opts.halfPeak) {
      const r = await halfPeakOnly(dir, opts);
      return report(opts.out, r, renderHalfPeak(r.halfPeak, r.halfPeakIsolated));
    }
    if (opts.coldStart) {
      const o = { rate: opts.rate ?? 3000, windowSeconds: opts.window, seconds: opts.seconds, rounds: opts.rounds ?? 1 };
      const rows = await coldStartPhase({ dir, upstream: await startUpstream({ chunks: STREAM.chunks, intervalMs: STREAM.intervalMs }), body: BODY, loadgen, log }, o);
      return report(opts.out, { coldStart: rows }, renderColdStart(rows, o));
    }
    if (opts.streamHeap) {
      const n = opts.streams?.[0] ?? 1000;
      const rows = await streamHeapPhase({ dir, streams: n, promptKb: opts.promptKb, baseline: opts.baseline, log });
      return report(opts.out, { streamHeap: rows }, renderStreamHeap(rows, n, opts.promptKb));
    }
    if (opts.socketFloor) {
      const n = opts.streams?.[0] ?? Math.min(SOCKET_FLOOR_STREAMS, maxSocketFloorStreams());
      const rows = await socketFloorPhase({ streams: n, log });
      return report(opts.out, { socketFloor: rows }, renderSocketFloor(rows, n));
    }
    if (opts.streamText) {
      const rows = streamTextPhase(STREAM_TEXT_STREAMS);
      return report(opts.out, { streamText: rows }, renderStreamText(rows, STREAM_TEXT_STREAMS));
    }
    if (opts.streams?.length === 1) {
      const s = await streamsPhase({ loadgen, log }, { streams: opts.streams[0], seconds: opts.streamSeconds, dir, logFile: opts.logFile });
      return report(opts.out, { streams: s }, renderStreams(s));
    }
    if (opts.streams) {
      const runs: StreamsResult[] = [];
      for (const n of opts.streams) runs.push(await streamsPhase({ loadgen, log }, { streams: n, seconds: opts.streamSeconds, dir, logFile: opts.logFile }));
      return report(opts.out, { streamsLadder: runs }, renderLadder(runs));
    }
    const upstream = await startUpstream({ chunks: STREAM.chunks, intervalMs: STREAM.intervalMs });
    if (opts.profile) {
      const profDir = join(ROOT, 'bench/results');
      mkdirSync(profDir, { recursive: true });
      const name = `gateway-${Date.now()}.cpuprofile`;
      gateway = await startGateway(upstream, dir, opts.logFile, { allLimits: opts.allLimits, nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-name', name] });
      await check(gateway);
      await closedLoop(dir, gateway, 2);
      const r = await closedLoop(dir, gateway, opts.quick ? 5 : 15);
      log(`profiled: ${r.rps.toFixed(0)} req/s, ${(r.cpuUs / Math.max(1, r.requests)).toFixed(1)} us CPU/request (profiling adds overhead)`);
      await gateway.stop();
      const file = join(profDir, name);
      process.stdout.write(summarise(JSON.parse(readFileSync(file, 'utf8')), 40));
      log(`profile: ${file} (open in Chrome DevTools > Performance, or: npx tsx bench/profile-summary.ts FILE)`);
      return;
    }
    if (opts.gc) {
      await gcComparison({ dir, upstream, quick: opts.quick, baseline: opts.baseline, body: BODY, closedLoop, loadgen, check, log });
      return;
    }
    if (opts.tracing) {
      const deps = { closedLoop, loadgen, withRss, cpuOf, check, streamStats, log };
      await tracingComparison({ ...deps, dir, quick: opts.quick, baseline: opts.baseline, rounds: opts.rounds, upstream, body: BODY, streamBody: STREAM_BODY, stream: STREAM });
      return;
    }
    gateway = await startGateway(upstream, dir, opts.logFile, { allLimits: opts.allLimits });
    const targets: Target[] = [upstream, gateway];
    const absent: Partial<Record<TargetName, string>> = {};
    for (const [name, startPeer] of [
      ['nginx', () => startNginx(upstream, dir)],
      ['portkey', () => startPortkey(upstream)],
      ['node-floor', () => startNodeFloor(upstream)],
    ] as const) {
      try {
        const t = await startPeer();
        await check(t);
        targets.push(t);
      } catch (err) {
        absent[name] = (err as Error).message.split('\n')[0];
        log(`${name} absent: ${absent[name]}`);
      }
    }
    const gatewayHeaders = await check(gateway);
    await check(upstream);
    if (!gatewayHeaders['x-ratelimit-limit-requests']) throw new Error('the gateway answered without rate-limit headers: is rate limiting on?');
    log(
      `targets: ${targets.map((t) => t.name).join(', ')}${Object.keys(absent).length ? ` (absent: ${Object.keys(absent).join(', ')})` : ''}; load: ${hasCommand('wrk') ? 'wrk' : 'autocannon'} + bench/loadgen.ts`,
    );

    const results: Results = {
      meta: {
        date: new Date().toISOString(),
        commit: execSync('git rev-parse --short HEAD', { cwd: ROOT, encoding: 'utf8' }).trim(),
        node: process.version,
        cpus: cpus().length,
        quick: opts.quick,
        loadTool: hasCommand('wrk') ? 'wrk -t1 -c50' : 'autocannon -c50',
        targets: targets.map((t) => t.name),
        absent,
        gatewayFeatures: `auth (hashed key), Redis rate limit (${opts.allLimits ? 'requests + tokens per minute, per key and per team' : 'requests per minute per key'}), team budget, cost accounting and spend in Redis, Prometheus metrics, one JSON info log line per request`,
        gatewayLog: opts.logFile,
        durationSeconds: 0,
      },
      peak: {},
      rates: {},
      stream: {},
    };

    // Warm every target's JIT and connection pools before measuring.
    log('warm-up');
    for (const t of targets) await closedLoop(dir, t, p.warmupSeconds);

    // Redis commands per gateway request, per phase (the gateway's own counter) and over the whole
    // run as Redis executed them (commands inside scripts included).
    const redisUse = { peak: { requests: 0, commands: 0 }, rates: {} as Record<number, { requests: number; commands: number }> };
    const server0 = await redisServerUse(gateway);
    const requests0 = (await redisSample(gateway.metricsUrl)).requests;
    const sampled = async <T>(t: Target, into: () => { requests: number; commands: number }, fn: () => Promise<T>): Promise<T> => {
      if (t.name !== 'gateway') return fn();
      const a = await redisSample(gateway!.metricsUrl);
      const out = await fn();
      const b = await redisSample(gateway!.metricsUrl);
      const acc = into();
      acc.requests += b.requests - a.requests;
      acc.commands += b.commands - a.commands;
      return out;
    };

    // 1. Peak throughput, closed loop, 50 connections; CPU per request over the same run.
    for (let pass = 0; pass < p.rounds; pass++) {
      for (const t of rotate(targets, pass)) {
        const r = await sampled(
          t,
          () => redisUse.peak,
          () => closedLoop(dir, t, p.peakSeconds),
        );
        const agg = (results.peak[t.name] ??= { rounds: [], rps: 0, requests: 0, cpuUsPerRequest: 0, errors: 0, cpuUsTotal: 0 });
        agg.rounds.push(round(r.rps, 0)!);
        agg.rps = Math.max(...agg.rounds);
        agg.requests += r.requests;
        agg.cpuUsTotal += r.cpuUs;
        agg.cpuUsPerRequest = round(agg.cpuUsTotal / Math.max(1, agg.requests), 1)!;
        agg.errors += r.non2xx + r.socketErrors;
        agg.p50Ms = r.p50Ms;
        agg.p99Ms = r.p99Ms;
        log(`peak ${t.name}: ${r.rps.toFixed(0)} req/s, ${(r.cpuUs / Math.max(1, r.requests)).toFixed(1)} us CPU/request${r.non2xx + r.socketErrors ? `, ${r.non2xx + r.socketErrors} errors` : ''}`);
      }
    }

    // 2. Fixed rates, open loop: latency percentiles, CPU per request and RSS at each rate.
    for (const rate of RATES) {
      const perTarget: Record<string, { lat: number[]; ok: number; errors: number; cpu: number; issued: number; rss: number; achieved: number[]; firstError?: string }> = {};
      const able = targets.filter((t) => {
        const peak = results.peak[t.name]?.rps ?? Infinity;
        if (peak >= rate * 1.6) return true; // open loop near saturation only measures the queue
        (results.rates[rate] ??= {})[t.name] = { skipped: `over capacity (peak ${Math.round(peak)} req/s)` };
        return false;
      });
      for (let pass = 0; pass < p.rounds; pass++) {
        for (const t of rotate(able, pass)) {
          const cpu0 = cpuOf(t);
          const [r, rss] = await sampled(
            t,
            () => (redisUse.rates[rate] ??= { requests: 0, commands: 0 }),
            () =>
              withRss(t, () =>
                loadgen<RateResult>(
                  { mode: 'rate', url: `${t.base}${CHAT_PATH}`, headers: t.headers, body: BODY, rate, durationMs: p.rateMs, warmupMs: p.rateWarmupMs, connections: 50 },
                  p.rateMs + p.rateWarmupMs + 30_000,
                ),
              ),
          );
          const acc = (perTarget[t.name] ??= { lat: [], ok: 0, errors: 0, cpu: 0, issued: 0, rss: 0, achieved: [] });
          acc.cpu += cpuOf(t) - cpu0;
          acc.issued += r.issuedTotal;
          acc.lat.push(...r.latenciesUs);
          acc.ok += r.ok;
          acc.errors += r.errors;
          acc.rss = Math.max(acc.rss, rss);
          acc.achieved.push(r.achievedRate);
          acc.firstError ??= r.firstError;
        }
      }
      const rateOut = (results.rates[rate] ??= {});
      for (const [name, a] of Object.entries(perTarget)) {
        const lat = sortNum(a.lat);
        rateOut[name] = {
          p50Us: pct(lat, 50),
          p99Us: pct(lat, 99),
          ok: a.ok,
          errors: a.errors,
          achievedRate: round(a.achieved.reduce((s, x) => s + x, 0) / a.achieved.length, 0)!,
          cpuUsPerRequest: round(a.cpu / Math.max(1, a.issued), 1)!,
          rssMb: round(a.rss, 1)!,
          ...(a.firstError ? { firstError: a.firstError } : {}),
        };
      }
      const d = rateOut.direct;
      log(
        `rate ${rate}/s: ${Object.entries(rateOut)
          .map(([n, v]) => ('p50Us' in v ? `${n} p50 ${(v.p50Us / 1000).toFixed(2)} p99 ${(v.p99Us / 1000).toFixed(2)} ms` : `${n} ${v.skipped}`))
          .join('; ')}${d && 'p50Us' in d ? '' : ''}`,
      );
    }

    // 2b. Half the gateway's own peak: the gateway against node-floor at the same rate, with the gateway's event-loop delay and GC pauses.
    const floor = targets.find((t) => t.name === 'node-floor');
    if (floor && results.peak.gateway) {
      const rate = Math.round(results.peak.gateway.rps / 2);
      const o = { targets: [upstream, gateway, floor], gateway, rate, rounds: p.rounds, durationMs: p.rateMs, warmupMs: p.rateWarmupMs, body: BODY };
      results.halfPeak = await halfPeakPhase({ loadgen, cpuOf, log }, o);
      results.halfPeakIsolated = await halfPeakIsolated(o, upstream, floor);
    }

    // 3. Streaming: time to first byte and gaps between chunks, against calling the upstream directly.
    for (const t of targets) {
      const r = await loadgen<StreamResult>(
        { mode: 'stream', url: `${t.base}${CHAT_PATH}`, headers: t.headers, body: STREAM_BODY, count: p.streams, concurrency: STREAM.concurrency, warmup: STREAM.concurrency },
        120_000,
      );
      results.stream[t.name] = streamStats(r);
      log(`stream ${t.name}: first byte p50 ${(results.stream[t.name].ttfbP50Us / 1000).toFixed(2)} ms, chunk gap p50 ${(results.stream[t.name].gapP50Us / 1000).toFixed(2)} ms`);
    }

    // The first-byte target: node-floor and the gateway alternating, one stream at a time, in targets of their own.
    const fb = { rounds: p.firstByteRounds, concurrency: 1 };
    results.firstByte = { ...fb, rows: await firstBytePhase({ dir, loadgen, log }, fb) };

    // CPU per request with conversations the size agents and chat with history send (read, checked, parsed, re-encoded per byte).
    results.promptCpu = { promptKb: PROMPT_KB, rows: await requestCpuPhase({ dir, closedLoop, log }, { rounds: p.rounds, seconds: 3, body: chatBodyOfSize(PROMPT_KB) }) };

    // 4. Soak: the gateway's RSS after a warm-up and after >= 100,000 more requests.
    log(`soak: ${p.soakWarmup} warm-up + ${p.soak} requests through the gateway`);
    const gwPeak = results.peak.gateway?.rps ?? 1000;
    const w = await closedLoopCount(dir, gateway, p.soakWarmup, gwPeak);
    const rss0 = rssOf(gateway);
    const s = await closedLoopCount(dir, gateway, p.soak, gwPeak);
    const rss1 = rssOf(gateway);
    results.soak = {
      warmupRequests: w.requests,
      requests: s.requests,
      rps: round(s.rps, 0)!,
      errors: s.non2xx + s.socketErrors,
      rssAfterWarmupMb: round(rss0, 1)!,
      rssEndMb: round(rss1, 1)!,
      growthPct: round(((rss1 - rss0) / rss0) * 100, 1)!,
    };
    results.gatewayMetrics = await gatewayCounters(gateway.metricsUrl);
    const perRequest = (u: { requests: number; commands: number }) => ({ ...u, perRequest: round(u.commands / Math.max(1, u.requests), 3)! });
    const servedInRun = (await redisSample(gateway.metricsUrl)).requests - requests0;
    const server1 = await redisServerUse(gateway);
    results.redis = {
      peak: perRequest(redisUse.peak),
      rates: Object.fromEntries(Object.entries(redisUse.rates).map(([rate, u]) => [rate, perRequest(u)])),
      serverCommandsPerRequest: round((server1.commands - server0.commands) / Math.max(1, servedInRun), 3)!,
      serverCpuUsPerRequest: round((server1.cpuUs - server0.cpuUs) / Math.max(1, servedInRun), 2)!,
      requestsInRun: servedInRun,
    };
    log(
      `redis commands per gateway request: peak ${results.redis.peak.perRequest}, ${Object.entries(results.redis.rates)
        .map(([rate, u]) => `${rate}/s ${u.perRequest}`)
        .join(', ')}; executed by Redis (scripts' commands included) ${results.redis.serverCommandsPerRequest}; Redis CPU ${results.redis.serverCpuUsPerRequest} us per request`,
    );

    // 5. Open streams: as many as one process can hold here, up to 10,000 (bench/streams.ts), after everything else.
    if (!opts.skipStreams) {
      const n = Math.min(p.openStreams, maxStreams());
      results.streams = await streamsPhase({ loadgen, log }, { streams: n, seconds: opts.streamSeconds, dir, logFile: opts.logFile });
      // What node:http and undici alone hold at the same N: the floor under the phase's RSS goal (~45 s).
      results.socketFloor = await socketFloorPhase({ streams: n, log });
    }
    // 6. The heap a stream's kept text holds, by answer length (in-process, seconds).
    results.streamText = streamTextPhase(STREAM_TEXT_STREAMS);

    results.meta.durationSeconds = Math.round((Date.now() - started) / 1000);
    results.targetsMet = evaluateTargets(results);
    const md = renderMarkdown(results);
    mkdirSync(join(opts.out, '..'), { recursive: true });
    writeFileSync(opts.out, `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(opts.out.replace(/\.json$/, '') + '.md', md);
    process.stdout.write(`${md}\n`);
    log(`wrote ${opts.out} in ${results.meta.durationSeconds} s`);
  } finally {
    await cleanup();
  }
}

function streamStats(r: StreamResult): StreamStats {
  const gaps: number[] = [];
  const last: number[] = [];
  for (const offsets of r.chunkOffsetsUs) {
    for (let i = 1; i < offsets.length; i++) if (offsets[i] !== undefined && offsets[i - 1] !== undefined) gaps.push(offsets[i] - offsets[i - 1]);
    if (offsets.length) last.push(offsets[offsets.length - 1]);
  }
  const ttfb = sortNum(r.ttfbUs);
  const g = sortNum(gaps);
  return {
    ok: r.ok,
    errors: r.errors,
    ttfbP50Us: pct(ttfb, 50),
    ttfbP99Us: pct(ttfb, 99),
    gapP50Us: pct(g, 50),
    gapP99Us: pct(g, 99),
    lastChunkP50Us: pct(sortNum(last), 50),
    readsPerStream: round(r.reads.reduce((s, x) => s + x, 0) / Math.max(1, r.reads.length), 1)!,
    ...(r.firstError ? { firstError: r.firstError } : {}),
  };
}

/** The gateway's requests served and Redis commands sent (its state connection), from /metrics. */
async function redisSample(url: string): Promise<{ requests: number; commands: number }> {
  const text = await (await fetch(url)).text();
  return { requests: metricSum(text, 'aigw_requests_total'), commands: metricSum(text, 'aigw_redis_commands_total', 'role="state"') };
}

/**
 * What the gateway's Redis has done so far: commands executed (INFO stats; commands run inside
 * scripts count too), less the INFO calls themselves, and its CPU time (INFO cpu, user + system).
 */
let infoCalls = 0;
async function redisServerUse(gateway: GatewayTarget): Promise<{ commands: number; cpuUs: number }> {
  const client = new Redis({ host: gateway.redis.host, port: gateway.redis.port, lazyConnect: true, maxRetriesPerRequest: 0 });
  try {
    await client.connect();
    const info = await client.info('all');
    infoCalls += 1;
    const num = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 0);
    return { commands: num('total_commands_processed') - infoCalls, cpuUs: (num('used_cpu_user') + num('used_cpu_sys')) * 1e6 };
  } finally {
    client.disconnect();
  }
}

/** A few counters from the gateway's /metrics, to show the features were on and nothing was refused. */
async function gatewayCounters(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(url)).text();
  const names = text.match(/^# TYPE (\S+) counter$/gm)?.map((l) => l.split(' ')[2]) ?? [];
  const out: Record<string, number> = {};
  for (const n of names) if (/requests_total|rate_limited|cost|tokens_total|redis_errors|redis_commands|auth_failures/.test(n)) out[n] = metricSum(text, n);
  return out;
}

main().catch(async (err: Error) => {
  log(`failed: ${err.message}`);
  await stopAll();
  process.exit(1);
});
