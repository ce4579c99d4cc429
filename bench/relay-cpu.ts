/**
 * npm run bench -- --relay-cpu [--baseline GIT_REF] [--rounds N]
 *
 * CPU per relayed stream event, saturated: S streams (default 100) held at once, the fake
 * upstream sending 1,000 content events each, 5 ms apart (about 20,000 events a second in
 * all), through node-floor, the gateway and, with --baseline, a gateway built from GIT_REF;
 * targets alternate within each round. Each figure is the target process's CPU (user + system,
 * /proc) over the whole run divided by the events it relayed, so it is the per-event cost of
 * the relay (SSE splitting, event inspection, the body iterator, the write) on top of what
 * node:http and undici spend, which node-floor shows. The open-streams phase (--streams)
 * measures the same thing at one event a second, where it is much noisier.
 */
import type { StreamResult, StreamSpec } from './loadgen';
import { cpuOf, pct, round, sortNum } from './lib';
import { CHAT_PATH, GatewayTarget, MODEL, startGateway, startNodeFloor, startUpstream, Target } from './targets';
import { buildBaseline } from './tracing';

export interface RelayCpuDeps {
  dir: string;
  loadgen<T>(spec: StreamSpec, timeoutMs: number): Promise<T>;
  log(m: string): void;
}

export interface RelayCpuOptions {
  rounds: number;
  streams: number;
  baseline?: string;
}

/** Content events per stream; the stream also carries a finish event, a usage event and [DONE]. */
export const RELAY_EVENTS = 1000;
const EVENTS_PER_STREAM = RELAY_EVENTS + 3;

export interface RelayCpuRow {
  target: string;
  /** CPU per relayed event, µs, of each round. */
  rounds: number[];
  medianUs: number | null;
  /** The median over node-floor's median. */
  overFloor: number | null;
}

/** One round through `t`: its CPU per event, or throws if a stream failed (a failed stream relays fewer events). */
async function once(d: RelayCpuDeps, t: Target, streams: number): Promise<number> {
  const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Stream quickly.' }], max_tokens: 2 * RELAY_EVENTS, stream: true });
  const spec: StreamSpec = { mode: 'stream', url: `${t.base}${CHAT_PATH}`, headers: t.headers, body, count: streams, concurrency: streams, warmup: 0, rampMs: 0 };
  const before = cpuOf(t);
  const r = await d.loadgen<StreamResult>(spec, 120_000);
  const used = cpuOf(t) - before;
  if (r.errors || r.ok !== streams) throw new Error(`relay-cpu: ${t.name}: ${r.errors} of ${streams} streams failed`);
  return used / (streams * EVENTS_PER_STREAM);
}

/** Medians and ratios over node-floor (pure). */
export function relayCpuRows(perTarget: Map<string, number[]>): RelayCpuRow[] {
  const median = (xs: number[]) => (xs.length ? pct(sortNum(xs), 50) : NaN);
  const floor = median(perTarget.get('node-floor') ?? []);
  return [...perTarget].map(([target, rounds]) => ({
    target,
    rounds: rounds.map((x) => round(x, 1) ?? 0),
    medianUs: round(median(rounds), 1),
    overFloor: round(median(rounds) / floor, 2),
  }));
}

export function renderRelayCpu(rows: RelayCpuRow[], streams: number): string {
  const lines = [
    `### CPU per relayed stream event (${streams} streams x ${RELAY_EVENTS} events, 5 ms apart)`,
    '',
    '| target | median µs/event | x node-floor | rounds |',
    '|---|---:|---:|---|',
    ...rows.map((r) => `| ${r.target} | ${r.medianUs ?? '–'} | ${r.overFloor ?? '–'} | ${r.rounds.join(', ')} |`),
  ];
  return `${lines.join('\n')}\n`;
}

export async function relayCpuPhase(d: RelayCpuDeps, o: RelayCpuOptions): Promise<RelayCpuRow[]> {
  const upstream = await startUpstream({ chunks: RELAY_EVENTS, intervalMs: 5 });
  const targets: Target[] = [await startNodeFloor(upstream, o.streams + 16)];
  const maxConnections = o.streams + 16;
  if (o.baseline) {
    const main = buildBaseline(o.baseline, d.dir, d.log);
    targets.push(await startGateway(upstream, d.dir, '/dev/null', { name: 'gateway-base', main, maxConnections }));
  }
  targets.push(await startGateway(upstream, d.dir, '/dev/null', { name: 'gateway', maxConnections }));
  const perTarget = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  try {
    for (const t of targets) await once(d, t, o.streams); // warm-up: JIT, pools, heap size
    for (let r = 0; r < o.rounds; r++) {
      for (const t of r % 2 ? [...targets].reverse() : targets) {
        const us = await once(d, t, o.streams);
        perTarget.get(t.name)!.push(us);
        d.log(`relay-cpu round ${r + 1}: ${t.name} ${us.toFixed(1)} µs/event`);
      }
    }
  } finally {
    for (const t of targets)
      if ('redis' in t)
        await (t as GatewayTarget)
          .stop()
          .then(() => (t as GatewayTarget).redis.close())
          .catch(() => undefined);
  }
  return relayCpuRows(perTarget);
}
