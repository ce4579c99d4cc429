/**
 * npm run bench -- --gc [--baseline GIT_REF] [--quick]
 *
 * Allocation and garbage collection per request: the gateway runs with V8's --trace-gc-nvp,
 * which prints, for every collection, the bytes allocated since the one before and the bytes
 * promoted to the old generation. After a warm-up, the gateway serves a fixed rate (1,000 req/s,
 * open loop) and then its peak (wrk, 50 connections); the collections in each phase are summed
 * and divided by the requests it served. With --baseline, a gateway built from GIT_REF is
 * measured the same way, alternately, in the same run. Writes bench/results/gc-latest.json and .md.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RateResult, RateSpec } from './loadgen';
import { buildBaseline, requestsServed } from './tracing';
import { CHAT_PATH, GatewayTarget, ROOT, startGateway, Target } from './targets';

export interface GcBenchDeps {
  dir: string;
  upstream: Target;
  quick: boolean;
  baseline?: string;
  body: string;
  closedLoop: (dir: string, t: Target, seconds: number) => Promise<{ requests: number }>;
  loadgen: <T>(spec: RateSpec, timeoutMs: number) => Promise<T>;
  check: (t: Target) => Promise<unknown>;
  log: (m: string) => void;
}

interface GcTotals {
  requests: number;
  scavenges: number;
  markCompacts: number;
  pauseMs: number;
  allocatedBytes: number;
  promotedBytes: number;
}

/** Sums the --trace-gc-nvp lines of a log from `from` (a character offset) to its end. */
export function sumGcLines(text: string): Omit<GcTotals, 'requests'> {
  const t = { scavenges: 0, markCompacts: 0, pauseMs: 0, allocatedBytes: 0, promotedBytes: 0 };
  for (const line of text.split('\n')) {
    const gc = / gc=(\w+)/.exec(line);
    if (!gc) continue;
    if (gc[1] === 's') t.scavenges++;
    else if (gc[1] === 'mc' || gc[1] === 'mmc') t.markCompacts++;
    t.pauseMs += Number(/ pause=([\d.]+)/.exec(line)?.[1] ?? 0);
    t.allocatedBytes += Number(/ allocated=(-?\d+)/.exec(line)?.[1] ?? 0);
    t.promotedBytes += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0);
  }
  return t;
}

const perRequest = (t: GcTotals) => ({
  requests: t.requests,
  allocatedKbPerRequest: Math.round((t.allocatedBytes / Math.max(1, t.requests) / 1024) * 10) / 10,
  promotedKbPerRequest: Math.round((t.promotedBytes / Math.max(1, t.requests) / 1024) * 100) / 100,
  scavengesPer10kRequests: Math.round((t.scavenges / Math.max(1, t.requests)) * 1e5) / 10,
  markCompacts: t.markCompacts,
  gcPauseUsPerRequest: Math.round(((t.pauseMs * 1000) / Math.max(1, t.requests)) * 10) / 10,
});

export async function gcComparison(d: GcBenchDeps): Promise<void> {
  const seconds = d.quick ? 3 : 8;
  const rounds = d.quick ? 1 : 2;
  const builds: Array<{ label: string; gw: GatewayTarget; log: string }> = [];
  try {
    const nodeArgs = ['--trace-gc', '--trace-gc-nvp'];
    if (d.baseline) {
      const log = join(d.dir, 'gc-baseline.log');
      builds.push({ label: `baseline (${d.baseline})`, log, gw: await startGateway(d.upstream, d.dir, log, { name: 'gateway-base', nodeArgs, main: buildBaseline(d.baseline, d.dir, d.log) }) });
    }
    const log = join(d.dir, 'gc-gateway.log');
    builds.push({ label: 'this build', log, gw: await startGateway(d.upstream, d.dir, log, { nodeArgs }) });
    for (const b of builds) await d.check(b.gw);
    for (const b of builds) await d.closedLoop(d.dir, b.gw, d.quick ? 2 : 4);
    const acc = new Map<string, { rate: GcTotals; peak: GcTotals }>();
    const zero = (): GcTotals => ({ requests: 0, scavenges: 0, markCompacts: 0, pauseMs: 0, allocatedBytes: 0, promotedBytes: 0 });
    const phase = async (b: (typeof builds)[number], into: GcTotals, fn: () => Promise<unknown>) => {
      const from = readFileSync(b.log, 'utf8').length;
      const served0 = await requestsServed(b.gw.metricsUrl);
      await fn();
      await new Promise((r) => setTimeout(r, 200));
      const t = sumGcLines(readFileSync(b.log, 'utf8').slice(from));
      into.requests += (await requestsServed(b.gw.metricsUrl)) - served0;
      into.scavenges += t.scavenges;
      into.markCompacts += t.markCompacts;
      into.pauseMs += t.pauseMs;
      into.allocatedBytes += t.allocatedBytes;
      into.promotedBytes += t.promotedBytes;
    };
    for (let round = 0; round < rounds; round++) {
      for (const b of round % 2 ? [...builds].reverse() : builds) {
        const a = acc.get(b.label) ?? { rate: zero(), peak: zero() };
        acc.set(b.label, a);
        d.log(`gc: ${b.label}, round ${round + 1}`);
        await phase(b, a.rate, () =>
          d.loadgen<RateResult>(
            { mode: 'rate', url: `${b.gw.base}${CHAT_PATH}`, headers: b.gw.headers, body: d.body, rate: 1000, durationMs: seconds * 1000, warmupMs: 500, connections: 50 },
            (seconds + 30) * 1000,
          ),
        );
        await phase(b, a.peak, () => d.closedLoop(d.dir, b.gw, seconds));
      }
    }
    const rows = [...acc].map(([label, a]) => ({ label, rate1000: perRequest(a.rate), peak: perRequest(a.peak) }));
    const md = [
      `### Allocation and GC per request (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, Node ${process.version}${d.quick ? ', --quick' : ''})`,
      '',
      'V8 --trace-gc-nvp: bytes allocated and promoted between collections, summed over each phase and divided by the requests served in it.',
      '',
      '| build | phase | requests | allocated KB / request | promoted KB / request | scavenges / 10k requests | mark-compacts | GC pause µs / request |',
      '|---|---|---:|---:|---:|---:|---:|---:|',
      ...rows.flatMap((r) =>
        (['rate1000', 'peak'] as const).map((k) => {
          const x = r[k];
          return `| ${r.label} | ${k === 'peak' ? 'peak (wrk -c50)' : '1,000 req/s'} | ${x.requests} | ${x.allocatedKbPerRequest} | ${x.promotedKbPerRequest} | ${x.scavengesPer10kRequests} | ${x.markCompacts} | ${x.gcPauseUsPerRequest} |`;
        }),
      ),
    ].join('\n');
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench/results/gc-latest.json'), `${JSON.stringify({ date: new Date().toISOString(), node: process.version, baseline: d.baseline, rows }, null, 2)}\n`);
    writeFileSync(join(ROOT, 'bench/results/gc-latest.md'), `${md}\n`);
    process.stdout.write(`${md}\n`);
  } finally {
    for (const b of builds) await b.gw.stop().catch(() => undefined);
  }
}
