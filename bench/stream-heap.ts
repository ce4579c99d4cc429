/**
 * npm run bench -- --stream-heap [--streams N] [--prompt-kb K] [--baseline GIT_REF]
 *
 * The JS heap one open stream holds, from two heap snapshots of each target (node-floor, the
 * gateway and, with --baseline, a gateway built from GIT_REF): one idle, one with N streams
 * open (default 1,000), each asked with a prompt of K KB (default 0: a few words). A snapshot
 * holds only what is reachable, so unlike RSS this is what a stream keeps, not garbage yet to be
 * collected; the difference over N is the heap per stream, by kind of object. The buffers a
 * stream keeps outside the JS heap (the request body undici holds) show as "native".
 * KEEP_SNAPSHOTS=1 with --keep leaves the .heapsnapshot files in the run's directory, to open in
 * Chrome DevTools (Memory) and follow what retains what.
 */
import { request } from 'node:http';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { round } from './lib';
import { withTargets } from './side-by-side';
import { CHAT_PATH, MODEL, Target } from './targets';

export interface HeapKind {
  kind: string;
  /** Objects of this kind per stream. */
  count: number;
  /** Bytes of this kind per stream. */
  bytes: number;
}

export interface StreamHeapRow {
  target: string;
  perStreamKb: number;
  /** The kinds that grew most, per stream. */
  top: HeapKind[];
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

/** Bytes and counts by kind of object (its type, and its constructor for objects). Strings, closures and code are one kind each. */
export function heapByKind(s: Snapshot): Map<string, { count: number; bytes: number }> {
  const f = s.snapshot.meta.node_fields;
  const [type, name, self] = [f.indexOf('type'), f.indexOf('name'), f.indexOf('self_size')];
  const types = s.snapshot.meta.node_types[0];
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodes.length; i += f.length) {
    const t = types[s.nodes[i + type]];
    const kind = /string/.test(t) ? 'strings' : t === 'closure' || t === 'code' || t === 'number' ? t : `${t} ${s.strings[s.nodes[i + name]]}`.slice(0, 60);
    const k = out.get(kind) ?? { count: 0, bytes: 0 };
    k.count++;
    k.bytes += s.nodes[i + self];
    out.set(kind, k);
  }
  return out;
}

/** The heap per stream between an idle and an open snapshot, and the `top` kinds that grew most. */
export function perStream(idle: ReturnType<typeof heapByKind>, open: ReturnType<typeof heapByKind>, streams: number, top = 6): { perStreamKb: number; top: HeapKind[] } {
  const total = (m: typeof idle) => [...m.values()].reduce((n, k) => n + k.bytes, 0);
  const grown = [...open].map(([kind, k]) => ({ kind, count: round((k.count - (idle.get(kind)?.count ?? 0)) / streams, 1)!, bytes: Math.round((k.bytes - (idle.get(kind)?.bytes ?? 0)) / streams) }));
  return { perStreamKb: round((total(open) - total(idle)) / streams / 1024, 2)!, top: grown.sort((a, b) => b.bytes - a.bytes).slice(0, top) };
}

/** Sends SIGUSR2 (--heapsnapshot-signal) and waits for the file: the target answers HTTP again once it is written. */
async function snapshot(t: Target, dir: string): Promise<Snapshot> {
  const before = new Set(readdirSync(dir));
  process.kill(t.pids()[0], 'SIGUSR2');
  for (const until = Date.now() + 120_000; Date.now() < until;) {
    await new Promise((r) => setTimeout(r, 250));
    const file = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (!file) continue;
    await fetch(`${t.base}/v1/models`, { headers: t.headers, signal: AbortSignal.timeout(120_000) }).then((r) => r.arrayBuffer());
    const s = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Snapshot;
    if (!process.env.KEEP_SNAPSHOTS) rmSync(join(dir, file));
    return s;
  }
  throw new Error(`${t.name}: no heap snapshot in 120 s`);
}

/** Opens one streamed chat completion; resolves at its first byte. The caller ends it with destroy(). */
function openStream(t: Target, body: string): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const u = new URL(`${t.base}${CHAT_PATH}`);
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false, headers: { ...t.headers, 'content-type': 'application/json' } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`${t.name}: HTTP ${res.statusCode}`));
      res.once('data', () => resolve(() => req.destroy()));
      res.on('error', () => undefined);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function measure(t: Target, dir: string, streams: number, body: string, log: (m: string) => void): Promise<StreamHeapRow> {
  // Warm: whatever loads on first use (the tokenizer for a long prompt, pools, compiled code) is in the idle snapshot too.
  for (const end of await Promise.all(Array.from({ length: 20 }, () => openStream(t, body)))) end();
  await new Promise((r) => setTimeout(r, 2000));
  const idle = heapByKind(await snapshot(t, dir));
  const ends: Array<() => void> = [];
  try {
    for (let i = 0; i < streams; i += 100) ends.push(...(await Promise.all(Array.from({ length: Math.min(100, streams - i) }, () => openStream(t, body)))));
    const open = heapByKind(await snapshot(t, dir));
    const row = { target: t.name, ...perStream(idle, open, streams) };
    log(`stream-heap: ${t.name} ${row.perStreamKb} KB a stream`);
    return row;
  } finally {
    for (const end of ends) end();
  }
}

export async function streamHeapPhase(o: { dir: string; streams: number; promptKb: number; baseline?: string; log(m: string): void }): Promise<StreamHeapRow[]> {
  const snaps = join(o.dir, 'snapshots');
  mkdirSync(snaps, { recursive: true });
  const args = ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snaps}`];
  const prompt = `Stream slowly. ${'lorem ipsum '.repeat(Math.round((o.promptKb * 1024) / 12))}`;
  const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: prompt }], max_tokens: 200, stream: true });
  const rows: StreamHeapRow[] = [];
  await withTargets({ dir: o.dir, baseline: o.baseline, upstream: { chunks: 180, intervalMs: 1000 }, maxConnections: o.streams + 16, nodeArgs: args, log: o.log }, async (targets) => {
    for (const t of targets) rows.push(await measure(t, snaps, o.streams, body, o.log));
  });
  return rows;
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(2)} KB`;

export function renderStreamHeap(rows: StreamHeapRow[], streams: number, promptKb: number): string {
  return [
    `### JS heap per open stream, from heap snapshots (${streams.toLocaleString('en-US')} streams, prompt ${promptKb} KB)`,
    '',
    '| target | heap per open stream | what grew most, per stream |',
    '|---|---:|---|',
    ...rows.map((r) => `| ${r.target} | ${r.perStreamKb} KB | ${r.top.map((k) => `${k.kind}: ${kb(k.bytes)} (${k.count})`).join('; ')} |`),
    '',
  ].join('\n');
}
