/**
 * The benchmark's load generator, run in its own process by bench/run.ts:
 *
 *   node -r tsx/cjs bench/loadgen.ts '<json spec>'     -> one JSON result line on stdout
 *
 * Two modes:
 *  - `rate`: open loop at a fixed request rate (wrk2 is not packaged here). Every
 *    millisecond it sends the requests that are due by then, whatever is still in flight,
 *    through an undici pool; each request's latency is measured with hrtime from the
 *    moment it is issued to the last byte of its body. Requests queued for a free
 *    connection count that wait in their latency, so a slow target cannot hide
 *    (no coordinated omission from the generator closing the loop).
 *  - `stream`: `count` streamed chat completions, `concurrency` at a time; records time to
 *    the first body byte and the arrival time of every content chunk (the fake upstream
 *    numbers them `tokN`), so run.ts can compare first-byte time and inter-chunk gaps.
 *
 * Everything targets 127.0.0.1 and is bounded by `durationMs` / `count`.
 */
import { Pool } from 'undici';
import { LatencyWindow, latencyWindows, slowStartShare } from './cold-start-model';

export interface RateSpec {
  mode: 'rate';
  url: string;
  headers: Record<string, string>;
  body: string;
  rate: number;
  durationMs: number;
  warmupMs: number;
  connections: number;
  /**
   * The rate ramps up as Envoy's slow start ramps a new endpoint's share (bench/cold-start.ts):
   * `rate` x slowStartShare(t). Absent: the full rate from the start.
   */
  slowStart?: { windowSeconds: number; minShare: number };
  /** Also each window's p99 by the time a request was issued (windowMs wide, from the start). */
  windowMs?: number;
}

export interface StreamSpec {
  mode: 'stream';
  url: string;
  headers: Record<string, string>;
  body: string;
  count: number;
  concurrency: number;
  warmup: number;
  /** Worker i sends its first request i x rampMs / concurrency ms after the start (default 0: all at once). */
  rampMs?: number;
}

export interface RateResult {
  mode: 'rate';
  sent: number;
  ok: number;
  errors: number;
  /** Requests issued per second in the measured window. */
  achievedRate: number;
  /** Requests issued in all, warm-up included (the CPU reading covers them all). */
  issuedTotal: number;
  /** Latency of every successful measured request, microseconds, sorted ascending. */
  latenciesUs: number[];
  /** With spec.windowMs: each window's successful requests and their p99, by issue time. */
  windows?: LatencyWindow[];
  firstError?: string;
}

export interface StreamResult {
  mode: 'stream';
  ok: number;
  errors: number;
  /** Per stream: microseconds to the first body byte. */
  ttfbUs: number[];
  /** Per stream: microseconds from the first body byte to each numbered chunk's arrival. */
  chunkOffsetsUs: number[][];
  /** Per stream: how many body reads carried content (fewer than chunks means coalesced/buffered). */
  reads: number[];
  /** Per stream: microseconds from the phase's start to its first body byte (to place its events in time). */
  firstUs?: number[];
  firstError?: string;
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

function poolFor(url: string, connections: number): { pool: Pool; path: string } {
  const u = new URL(url);
  if (u.hostname !== '127.0.0.1' && u.hostname !== 'localhost') throw new Error(`loadgen only targets loopback, not ${u.hostname}`);
  return { pool: new Pool(u.origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 }), path: u.pathname + u.search };
}

async function runRate(spec: RateSpec): Promise<RateResult> {
  const { pool, path } = poolFor(spec.url, spec.connections);
  const result: RateResult = { mode: 'rate', sent: 0, ok: 0, errors: 0, achievedRate: 0, issuedTotal: 0, latenciesUs: [] };
  const headers = { ...spec.headers, 'content-type': 'application/json' };
  const totalMs = spec.warmupMs + spec.durationMs;
  const start = nowUs();
  const measureFrom = start + spec.warmupMs * 1000;
  let issued = 0;
  let measuredIssued = 0;
  const inflight = new Set<Promise<void>>();
  // With spec.windowMs: [issued at, ms from the start; latency, µs] of each successful measured request.
  const timed: [number, number][] = [];
  // With slowStart, the requests due so far: the rate times the share, summed tick by tick.
  let rampDue = 0;
  let lastTick = start;

  const one = (measured: boolean) => {
    const t0 = nowUs();
    const p = pool
      .request({ method: 'POST', path, headers, body: spec.body })
      .then(async (res) => {
        await res.body.dump({ limit: 1 << 20 });
        if (!measured) return;
        if (res.statusCode === 200) {
          result.ok++;
          result.latenciesUs.push(nowUs() - t0);
          if (spec.windowMs) timed.push([(t0 - measureFrom) / 1000, nowUs() - t0]);
        } else {
          result.errors++;
          result.firstError ??= `HTTP ${res.statusCode}`;
        }
      })
      .catch((err: Error) => {
        if (!measured) return;
        result.errors++;
        result.firstError ??= err.message;
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
  };

  await new Promise<void>((resolve) => {
    const tick = () => {
      const t = nowUs();
      const elapsedMs = (t - start) / 1000;
      if (elapsedMs >= totalMs) return resolve();
      if (spec.slowStart) rampDue += ((t - lastTick) / 1e6) * spec.rate * slowStartShare(elapsedMs / 1000, spec.slowStart.windowSeconds, spec.slowStart.minShare);
      lastTick = t;
      const due = spec.slowStart ? Math.floor(rampDue) : Math.floor((elapsedMs * spec.rate) / 1000);
      while (issued < due) {
        issued++;
        const measured = t >= measureFrom;
        if (measured) measuredIssued++;
        one(measured);
      }
      setTimeout(tick, 1);
    };
    tick();
  });
  result.sent = measuredIssued;
  result.issuedTotal = issued;
  result.achievedRate = measuredIssued / (spec.durationMs / 1000);
  // Let the last requests finish (bounded): their latency counts.
  await Promise.race([Promise.all([...inflight]), new Promise((r) => setTimeout(r, 5000))]);
  // Windows whose requests had not answered by then show as fewer requests (or none).
  if (spec.windowMs) result.windows = latencyWindows(timed, spec.windowMs, spec.durationMs);
  result.latenciesUs.sort((a, b) => a - b);
  await pool.destroy();
  return result;
}

const TOKEN = /tok(\d+)/g;

async function runStreams(spec: StreamSpec): Promise<StreamResult> {
  const { pool, path } = poolFor(spec.url, spec.concurrency);
  const result: StreamResult = { mode: 'stream', ok: 0, errors: 0, ttfbUs: [], chunkOffsetsUs: [], reads: [], firstUs: [] };
  const headers = { ...spec.headers, 'content-type': 'application/json', accept: 'text/event-stream' };
  let started = 0;
  const total = spec.warmup + spec.count;

  const origin = nowUs();
  const worker = async (i: number) => {
    if (spec.rampMs) await new Promise((r) => setTimeout(r, (i * spec.rampMs!) / spec.concurrency));
    while (started < total) {
      const measured = started++ >= spec.warmup;
      const t0 = nowUs();
      try {
        const res = await pool.request({ method: 'POST', path, headers, body: spec.body });
        if (res.statusCode !== 200) {
          await res.body.dump();
          throw new Error(`HTTP ${res.statusCode}`);
        }
        let first = 0;
        let reads = 0;
        const offsets: number[] = [];
        for await (const chunk of res.body) {
          const t = nowUs();
          if (!first) first = t;
          const text = (chunk as Buffer).toString('utf8');
          let carried = false;
          for (const m of text.matchAll(TOKEN)) {
            offsets[Number(m[1])] = t - first;
            carried = true;
          }
          if (carried) reads++;
        }
        if (!measured) continue;
        result.ok++;
        result.ttfbUs.push(first - t0);
        result.chunkOffsetsUs.push(offsets);
        result.firstUs?.push(first - origin);
        result.reads.push(reads);
      } catch (err) {
        if (!measured) continue;
        result.errors++;
        result.firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, (_, i) => worker(i)));
  await pool.destroy();
  return result;
}

async function main() {
  const spec = JSON.parse(process.argv[2] ?? '{}') as RateSpec | StreamSpec;
  const result = spec.mode === 'rate' ? await runRate(spec) : await runStreams(spec);
  // A pipe is written asynchronously: exit only once the whole result is out (a large one was cut short).
  await new Promise<void>((resolve, reject) => process.stdout.write(`${JSON.stringify(result)}\n`, (err) => (err ? reject(err) : resolve())));
}

if (require.main === module) {
  // A parent that dies takes us with it (stdin closes), so no orphaned load keeps running.
  process.stdin.on('end', () => process.exit(3));
  process.stdin.resume();
  main().then(
    () => process.exit(0),
    (err: Error) => {
      process.stderr.write(`loadgen: ${err.message}\n`);
      process.exit(1);
    },
  );
}
