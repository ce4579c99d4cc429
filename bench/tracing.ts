/**
 * npm run bench -- --tracing [--quick] [--baseline GIT_REF] [--rounds N]
 *
 * The cost of tracing: the same gateway twice, side by side in one run, alternating within
 * each round: tracing off (no OTEL_* variable) and tracing on (OTEL_TRACES_SAMPLER=always_on,
 * OTLP http/protobuf to a local sink on 127.0.0.1 that decodes and counts every span).
 * Peak throughput and CPU per request, latency at a fixed rate against the upstream called
 * directly, stream first byte; then the on-gateway is stopped (flushing its last batch) and
 * the sink's span count is checked against two spans per request.
 * With --baseline, a third gateway built from GIT_REF's service/ (e.g. the commit before tracing)
 * runs beside them: "off" against it is the cost of the hooks when tracing is off.
 * Writes bench/results/tracing-latest.json and .md.
 */
import { execSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startOtlpReceiver } from '../test/helpers/otlp-receiver';
import type { RateResult, RateSpec, StreamResult, StreamSpec } from './loadgen';
import { metricSum, pct, round, sortNum } from './lib';
import type { StreamStats } from './report';
import { CHAT_PATH, GatewayTarget, ROOT, startGateway, Target } from './targets';

interface Peak {
  rps: number;
  requests: number;
  cpuUs: number;
  p50Ms?: number;
  p99Ms?: number;
}

/** What run.ts lends: its load tools and sanity check, so both modes measure the same way. */
export interface TracingBenchDeps {
  dir: string;
  quick: boolean;
  /** A git ref whose service/ is built and run as a third gateway, "gateway-base". */
  baseline?: string;
  /** Rounds of each phase (more rounds, steadier figures on a noisy machine). */
  rounds?: number;
  upstream: Target;
  body: string;
  streamBody: string;
  stream: { concurrency: number };
  closedLoop(dir: string, t: Target, seconds: number): Promise<Peak>;
  loadgen<T>(spec: RateSpec | StreamSpec, timeoutMs: number): Promise<T>;
  withRss<T>(t: Target, fn: () => Promise<T>): Promise<[T, number]>;
  cpuOf(t: Target): number;
  check(t: Target): Promise<Record<string, string>>;
  streamStats(r: StreamResult): StreamStats;
  log(msg: string): void;
}

const rotate = <T>(xs: T[], n: number) => xs.map((_x, i) => xs[(i + n) % xs.length]);

/**
 * Builds GIT_REF's service/ into DIR/baseline/dist; returns its main.js. node_modules is linked from
 * this checkout when GIT_REF has the same lock file, else GIT_REF's own lock is installed (`npm ci`):
 * an older build may need a package this checkout no longer has.
 */
export function buildBaseline(ref: string, dir: string, log: (m: string) => void): string {
  const src = join(dir, 'baseline');
  mkdirSync(src);
  log(`building the baseline gateway from ${ref}`);
  execSync(`git archive ${ref} service tsconfig.json package.json package-lock.json | tar -x -C ${src}`, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  if (readFileSync(join(src, 'package-lock.json'), 'utf8') === readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) {
    symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'));
  } else {
    log(`installing ${ref}'s own dependencies (its lock file differs)`);
    execSync('npm ci --ignore-scripts --no-audit --no-fund', { cwd: src, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  execSync(`${join(ROOT, 'node_modules/.bin/tsc')} -p tsconfig.json`, { cwd: src, stdio: ['ignore', 'ignore', 'inherit'] });
  return join(src, 'dist/service/main.js');
}

export async function requestsServed(metricsUrl: string): Promise<number> {
  return metricSum(await (await fetch(metricsUrl)).text(), 'aigw_requests_total');
}

type Plan = { rounds: number; peakSeconds: number; warmupSeconds: number; rateMs: number; rateWarmupMs: number; streams: number };
type RateAcc = { lat: number[]; cpu: number; issued: number; rss: number; errors: number };

/** Peak rounds, fixed-rate rounds (with the upstream called directly as the baseline) and streams, targets alternating. */
async function measure(d: TracingBenchDeps, p: Plan, gateways: Target[]) {
  const peak: Record<string, Peak[]> = {};
  for (let pass = 0; pass < p.rounds; pass++) {
    for (const t of rotate(gateways, pass)) {
      const r = await d.closedLoop(d.dir, t, p.peakSeconds);
      (peak[t.name] ??= []).push(r);
      d.log(`peak ${t.name}: ${r.rps.toFixed(0)} req/s, ${(r.cpuUs / Math.max(1, r.requests)).toFixed(1)} us CPU/request`);
    }
  }
  const best = (n: string) => Math.max(...peak[n].map((r) => r.rps));
  const rate = Math.min(...gateways.map((g) => best(g.name))) >= 1600 ? 1000 : 500;
  const rates: Record<string, RateAcc> = {};
  for (let pass = 0; pass < p.rounds; pass++) {
    for (const t of rotate([d.upstream, ...gateways], pass)) {
      const cpu0 = d.cpuOf(t);
      const spec: RateSpec = { mode: 'rate', url: `${t.base}${CHAT_PATH}`, headers: t.headers, body: d.body, rate, durationMs: p.rateMs, warmupMs: p.rateWarmupMs, connections: 50 };
      const [r, rss] = await d.withRss(t, () => d.loadgen<RateResult>(spec, p.rateMs + p.rateWarmupMs + 30_000));
      const acc = (rates[t.name] ??= { lat: [], cpu: 0, issued: 0, rss: 0, errors: 0 });
      acc.lat.push(...r.latenciesUs);
      acc.cpu += d.cpuOf(t) - cpu0;
      acc.issued += r.issuedTotal;
      acc.rss = Math.max(acc.rss, rss);
      acc.errors += r.errors;
    }
  }
  const streams: Record<string, StreamStats> = {};
  for (const t of [d.upstream, ...gateways]) {
    const spec: StreamSpec = {
      mode: 'stream',
      url: `${t.base}${CHAT_PATH}`,
      headers: t.headers,
      body: d.streamBody,
      count: p.streams,
      concurrency: d.stream.concurrency,
      warmup: d.stream.concurrency,
    };
    streams[t.name] = d.streamStats(await d.loadgen<StreamResult>(spec, 120_000));
  }
  return { peak, rate, rates, streams };
}

export async function tracingComparison(d: TracingBenchDeps): Promise<void> {
  const p: Plan = d.quick
    ? { rounds: 2, peakSeconds: 3, warmupSeconds: 1, rateMs: 2500, rateWarmupMs: 500, streams: 30 }
    : { rounds: 3, peakSeconds: 6, warmupSeconds: 2, rateMs: 5000, rateWarmupMs: 1000, streams: 100 };
  if (d.rounds && d.rounds > 0) p.rounds = Math.floor(d.rounds);
  const sink = await startOtlpReceiver({ keep: false });
  let off: GatewayTarget | undefined;
  let on: GatewayTarget | undefined;
  let base: GatewayTarget | undefined;
  try {
    if (d.baseline) base = await startGateway(d.upstream, d.dir, join(d.dir, 'gateway-base.log'), { name: 'gateway-base', main: buildBaseline(d.baseline, d.dir, d.log) });
    // All log to a file (the same cost); the traced one's is read at the end for the SDK's
    // "Dropped N spans because maxQueueSize reached" warnings.
    off = await startGateway(d.upstream, d.dir, join(d.dir, 'gateway.log'), { name: 'gateway' });
    const onLog = join(d.dir, 'gateway-traced.log');
    on = await startGateway(d.upstream, d.dir, onLog, {
      name: 'gateway-traced',
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_TRACES_SAMPLER: 'always_on', OTEL_SERVICE_NAME: 'ai-gateway-bench' },
    });
    const gateways = base ? [base, off, on] : [off, on];
    for (const t of [d.upstream, ...gateways]) await d.check(t);
    d.log('tracing comparison: warm-up');
    for (const t of gateways) await d.closedLoop(d.dir, t, p.warmupSeconds);
    const m = await measure(d, p, gateways);

    const served = await requestsServed(on.metricsUrl);
    await on.stop(); // SIGTERM: the gateway exports its last batch before it exits
    await on.redis.close();
    on = undefined;
    const dropped = [...readFileSync(onLog, 'utf8').matchAll(/Dropped (\d+) spans because maxQueueSize reached/g)].reduce((n, x) => n + Number(x[1]), 0);
    const results = summarise({
      ...m,
      names: gateways.map((g) => g.name),
      baseline: d.baseline,
      served,
      sink: { spans: sink.spanCount, requests: sink.requests, bytes: sink.bytes, droppedBySdk: dropped },
      quick: d.quick,
    });
    const out = join(ROOT, 'bench/results/tracing-latest');
    mkdirSync(join(out, '..'), { recursive: true });
    writeFileSync(`${out}.json`, `${JSON.stringify(results.json, null, 2)}\n`);
    writeFileSync(`${out}.md`, `${results.md}\n`);
    process.stdout.write(`${results.md}\n`);
    d.log(`wrote ${out}.json and .md`);
  } finally {
    for (const g of [on, off, base]) {
      await g?.stop();
      await g?.redis.close().catch(() => undefined);
    }
    await sink.close();
  }
}

interface Collected {
  names: string[];
  baseline: string | undefined;
  peak: Record<string, Peak[]>;
  rates: Record<string, RateAcc>;
  streams: Record<string, StreamStats>;
  rate: number;
  served: number;
  sink: { spans: number; requests: number; bytes: number; droppedBySdk: number };
  quick: boolean;
}

const LABEL: Record<string, string> = { 'gateway-base': 'baseline build, no hooks', gateway: 'tracing off', 'gateway-traced': 'tracing on' };

function summarise(c: Collected): { json: unknown; md: string } {
  const peakOf = (n: string) => {
    const rs = c.peak[n];
    const requests = rs.reduce((s, r) => s + r.requests, 0);
    const perRound = sortNum(rs.map((r) => r.cpuUs / Math.max(1, r.requests)));
    return {
      rounds: rs.map((r) => round(r.rps, 0)!),
      rps: Math.max(...rs.map((r) => r.rps)),
      cpuUsPerRequest: rs.reduce((s, r) => s + r.cpuUs, 0) / Math.max(1, requests),
      cpuUsMedian: perRound[perRound.length >> 1],
      p99Ms: rs[rs.length - 1].p99Ms,
    };
  };
  const rateOf = (n: string) => {
    const a = c.rates[n];
    const lat = sortNum(a.lat);
    return { p50Us: pct(lat, 50), p99Us: pct(lat, 99), cpuUsPerRequest: a.cpu / Math.max(1, a.issued), rssMb: a.rss, errors: a.errors };
  };
  const direct = rateOf('direct');
  const rows = c.names.map((n) => ({ name: n, peak: peakOf(n), rate: rateOf(n), stream: c.streams[n] }));
  const ms = (us: number) => (us / 1000).toFixed(2);
  const row = (label: string, cell: (r: (typeof rows)[number]) => string) => `| ${label} | ${rows.map(cell).join(' | ')} |`;
  const md = [
    `### Tracing off vs on (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC${c.quick ? ', --quick' : ''})`,
    '',
    `Every gateway runs in this one run, measured alternately on a shared machine. "tracing on": OTEL_TRACES_SAMPLER=always_on, OTLP http/protobuf to a local sink on 127.0.0.1, default batch processor; two spans per request (server + one upstream attempt).${c.baseline ? ` "baseline": the gateway built from ${c.baseline}.` : ''}`,
    '',
    `| | ${rows.map((r) => LABEL[r.name]).join(' | ')} |`,
    `|---|${rows.map(() => '---:').join('|')}|`,
    row('Peak throughput, req/s (best round)', (r) => `${r.peak.rps.toFixed(0)} (${r.peak.rounds.join(', ')})`),
    row('CPU per request at peak, µs: all rounds (median round)', (r) => `${r.peak.cpuUsPerRequest.toFixed(0)} (${r.peak.cpuUsMedian.toFixed(0)})`),
    row(`Added latency p50 / p99 at ${c.rate} req/s over direct, ms`, (r) => `${ms(r.rate.p50Us - direct.p50Us)} / ${ms(r.rate.p99Us - direct.p99Us)}`),
    row(`CPU per request at ${c.rate} req/s, µs`, (r) => r.rate.cpuUsPerRequest.toFixed(0)),
    row(`RSS at ${c.rate} req/s, MB`, (r) => r.rate.rssMb.toFixed(0)),
    row('Stream first byte p50 added over direct, ms', (r) => ms(r.stream.ttfbP50Us - c.streams.direct.ttfbP50Us)),
    row('Errors (rate + stream phases)', (r) => String(r.rate.errors + r.stream.errors)),
    '',
    `Sink: ${c.sink.spans.toLocaleString('en-US')} spans in ${c.sink.requests.toLocaleString('en-US')} OTLP requests (${(c.sink.bytes / 1e6).toFixed(1)} MB) for ${c.served.toLocaleString('en-US')} requests served with tracing on: ${((c.sink.spans / Math.max(1, 2 * c.served)) * 100).toFixed(1)}% of the expected 2 spans per request arrived (a request the load generator abandons at the end of a run before its upstream attempt has only its server span); the SDK reported ${c.sink.droppedBySdk.toLocaleString('en-US')} spans dropped because its batch queue was full (OTEL_BSP_MAX_QUEUE_SIZE, default 2048).`,
  ].join('\n');
  return { json: { date: new Date().toISOString(), quick: c.quick, baseline: c.baseline, rate: c.rate, direct, gateways: rows, sink: c.sink, served: c.served }, md };
}
