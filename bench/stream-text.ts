/**
 * npm run bench -- --stream-text
 *
 * The text a stream keeps: every open stream keeps what it relayed (to bill a cut stream and to
 * continue it on another provider). This phase feeds E chat chunk events of one ~5-character
 * token each, as OpenAI sends them, through the gateway's own `inspectEvent` for S streams at
 * once, then reports the JS heap still held per stream after a full collection, against the
 * same text appended with `+=` (V8's rope: a node per piece). In-process, a few seconds.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { EventSummary, inspectEvent } from '../service/core/sse';
import { round } from './lib';

export interface StreamTextRow {
  events: number;
  /** KB of heap per stream, text kept by inspectEvent (appendOutput). */
  keptKb: number;
  /** KB of heap per stream, the same text appended with `+=`. */
  ropeKb: number;
  /** The text's own length per stream (characters). */
  chars: number;
}

/** A full collection, from a process started without --expose-gc (the flag set at run time). */
function fullGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

const chunk = (i: number) =>
  `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"t${i % 1000} "},"finish_reason":null}]}`;

/** Heap held by `streams` summaries after `events` events each, per stream, in KB. */
function heldKb(streams: number, events: number, feed: (acc: EventSummary, event: string) => void): { kb: number; chars: number } {
  const events50 = Array.from({ length: 50 }, (_, i) => chunk(i));
  fullGc();
  const before = process.memoryUsage().heapUsed;
  const accs: EventSummary[] = Array.from({ length: streams }, () => ({ outputText: '', outputPieces: 0, sawDone: false }));
  for (let e = 0; e < events; e++) for (const acc of accs) feed(acc, events50[e % 50]);
  fullGc();
  const kb = (process.memoryUsage().heapUsed - before) / streams / 1024;
  return { kb, chars: accs[accs.length - 1].outputText.length };
}

/** What inspectEvent did before the text was kept flat: the same parse, the text appended with `+=`. */
function rope(acc: EventSummary, event: string): void {
  const text = (JSON.parse(event.slice(6)) as { choices: Array<{ delta: { content: string } }> }).choices[0].delta.content;
  acc.outputText += text;
}

export function streamTextPhase(streams: number, counts = [45, 1000, 4000]): StreamTextRow[] {
  return counts.map((events) => {
    const kept = heldKb(streams, events, (acc, event) => void inspectEvent(event, false, acc));
    const roped = heldKb(streams, events, rope);
    return { events, keptKb: round(kept.kb, 2)!, ropeKb: round(roped.kb, 2)!, chars: kept.chars };
  });
}

export function renderStreamText(rows: StreamTextRow[], streams: number): string {
  return [
    `### The text a stream keeps: JS heap per stream after a full collection (${streams} streams, one chat chunk event of one token each)`,
    '',
    '| events per stream | text (characters) | kept by the gateway (inspectEvent) | appended with `+=` (a rope) |',
    '|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.events.toLocaleString('en-US')} | ${r.chars.toLocaleString('en-US')} | ${r.keptKb} KB | ${r.ropeKb} KB |`),
    '',
  ].join('\n');
}
