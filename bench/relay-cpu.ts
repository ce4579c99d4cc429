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
import { SideBySideRow, sideBySide, renderSideBySide } from './side-by-side';
import { cpuOf } from './lib';
import { CHAT_PATH, MODEL, Target } from './targets';

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

export async function relayCpuPhase(d: RelayCpuDeps, o: RelayCpuOptions): Promise<SideBySideRow[]> {
  return sideBySide({
    dir: d.dir,
    rounds: o.rounds,
    baseline: o.baseline,
    upstream: { chunks: RELAY_EVENTS, intervalMs: 5 },
    maxConnections: o.streams + 16,
    log: (m) => d.log(`relay-cpu ${m}`),
    once: (t) => once(d, t, o.streams),
    unit: 'µs/event',
  });
}

export const renderRelayCpu = (rows: SideBySideRow[], streams: number): string =>
  renderSideBySide(`CPU per relayed stream event (${streams} streams x ${RELAY_EVENTS} events, 5 ms apart)`, 'µs/event', rows);
