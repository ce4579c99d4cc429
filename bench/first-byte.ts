/**
 * npm run bench -- --first-byte [--baseline GIT_REF] [--rounds N] [--concurrency C] [--prompt-kb K]
 *
 * Time to a stream's first body byte, p50, through node-floor, the gateway and, with --baseline,
 * a gateway built from GIT_REF, targets alternating within each round (bench/side-by-side.ts):
 * 150 streamed chat completions a round after 20 of warm-up, C at a time (default 1: no queue,
 * so what is measured is the path of one request, not the load). The target "added first byte
 * p50 <= node-floor's + 0.5 ms" is the gateway's median minus node-floor's, which this prints.
 * With --prompt-kb, each stream asks with a conversation of about K KB (bench/prompts.ts): what
 * the gateway reads, checks, parses and re-encodes before the provider call shows in its first byte.
 */
import type { StreamResult, StreamSpec } from './loadgen';
import { SideBySideRow, sideBySide, renderSideBySide } from './side-by-side';
import { pct, sortNum } from './lib';
import { CHAT_PATH, Target } from './targets';
import { chatBodyOfSize, promptLabel } from './prompts';

export interface FirstByteDeps {
  dir: string;
  loadgen<T>(spec: StreamSpec, timeoutMs: number): Promise<T>;
  log(m: string): void;
}

const STREAMS = 150;
async function once(d: FirstByteDeps, t: Target, concurrency: number, body: string): Promise<number> {
  const spec: StreamSpec = { mode: 'stream', url: `${t.base}${CHAT_PATH}`, headers: t.headers, body, count: STREAMS, concurrency, warmup: 20 };
  const r = await d.loadgen<StreamResult>(spec, 120_000);
  if (r.errors || r.ok < STREAMS) throw new Error(`first-byte: ${t.name}: ${r.errors} of ${STREAMS} streams failed${r.firstError ? `: ${r.firstError}` : ''}`);
  return pct(sortNum(r.ttfbUs), 50);
}

export function firstBytePhase(d: FirstByteDeps, o: { rounds: number; concurrency: number; baseline?: string; promptKb?: number }): Promise<SideBySideRow[]> {
  const body = chatBodyOfSize(o.promptKb ?? 0, true);
  return sideBySide({
    dir: d.dir,
    rounds: o.rounds,
    baseline: o.baseline,
    upstream: { chunks: 20, intervalMs: 5 },
    log: (m) => d.log(`first-byte ${m}`),
    once: (t) => once(d, t, o.concurrency, body),
    unit: 'µs first byte',
  });
}

export const renderFirstByte = (rows: SideBySideRow[], concurrency: number, promptKb = 0): string =>
  renderSideBySide(`Stream first byte p50 (${STREAMS} streams a round, ${concurrency} at a time${promptLabel(promptKb)})`, 'µs first byte', rows, 'difference');
