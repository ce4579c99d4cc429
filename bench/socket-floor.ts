/**
 * npm run bench -- --socket-floor [--streams N]
 *
 * The memory a Node proxy cannot avoid per open stream: one process holding N streamed answers
 * with node:http (the gateway's server: the client's socket, its parser, request and response),
 * one holding N with an undici Pool (the gateway's client: the provider's socket, its parser and
 * body), and one holding N with plain TCP sockets that parse nothing (the least any client side
 * can hold), each against plain-socket peers in processes of their own
 * (bench/socket-floor-child.ts), one event a second per stream. RSS and JS heap per stream
 * above the process's idle figures, after a full collection, and the young generation's share
 * (V8's nursery grows under allocation up to a size the node flags fix, whatever N is), under
 * the gateway's own flags (service/core/runtime-flags.ts) and under the smallest young
 * generation (--max-semi-space-size=1). The server side plus a client side is the least any
 * proxy built that way holds per stream here, before any of its own state; the open-streams
 * goal (issue 26: <= 16 KB) is read against it.
 */
import { NODE_FLAGS } from '../service/core/runtime-flags';
import { outputMatch, start, stop, round } from './lib';
import { portFromStdout, ROOT, tsNode } from './targets';
import type { Footprint } from './socket-floor-child';
import { fdLimit } from './streams';

export type Side = 'node:http server' | 'undici client' | 'plain TCP client';
const SIDES: readonly Side[] = ['node:http server', 'undici client', 'plain TCP client'];
type Client = Exclude<Side, 'node:http server'>;

export interface SocketFloorRow {
  side: Side;
  flags: string;
  rssKb: number;
  heapKb: number;
  /** The young generation's growth over the run, per stream (a fixed size spread over N, not a cost of each stream). */
  youngGenKb: number;
}

/** The open-streams goal (issue 26), KB of RSS per stream. */
export const STREAM_RSS_GOAL_KB = 16;
export const SMALLEST_YOUNG_GEN = ['--max-semi-space-size=1'];

/** Per-stream KB between the idle and the open footprint. */
export function perStreamKb(idle: Footprint, open: Footprint, n: number): Pick<SocketFloorRow, 'rssKb' | 'heapKb' | 'youngGenKb'> {
  const kb = (bytes: number) => round(bytes / n / 1024, 2)!;
  return { rssKb: kb(open.rss - idle.rss), heapKb: kb(open.heapUsed - idle.heapUsed), youngGenKb: kb(open.youngGen - idle.youngGen) };
}

/** The measured child's `{"result":...}` line. */
async function result(s: ReturnType<typeof start>, what: string, timeoutMs: number): Promise<{ idle: Footprint; open: Footprint }> {
  const line = await outputMatch(s, /^\{"result":.*$/m, timeoutMs, `socket-floor: ${what} reported nothing in ${timeoutMs / 1000} s`);
  return (JSON.parse(line[0]) as { result: { idle: Footprint; open: Footprint } }).result;
}

/** One side under `flags`: the measured process and its peer, both stopped before returning. */
export async function measureSide(side: Side, n: number, flags: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<SocketFloorRow> {
  const child = (role: string, args: string[], nodeArgs: readonly string[] = []) => {
    const [cmd, a] = tsNode('bench/socket-floor-child.ts', [role, String(n), ...args]);
    return start(cmd, [...nodeArgs, ...a], { cwd: ROOT, env });
  };
  const measuredFlags = ['--expose-gc', ...flags];
  const started: Array<ReturnType<typeof start>> = [];
  try {
    let measured: ReturnType<typeof start>;
    if (side === 'node:http server') {
      measured = child('server', [], measuredFlags);
      started.push(measured);
      started.push(child('peer-client', [String(await portFromStdout(measured, 'node:http server'))]));
    } else {
      const peer = child('peer-server', []);
      started.push(peer);
      measured = child(side === 'undici client' ? 'client' : 'tcp-client', [String(await portFromStdout(peer, 'peer server'))], measuredFlags);
      started.push(measured);
    }
    const r = await result(measured, side, 60_000 + n * 10);
    return { side, flags: flags.join(' '), ...perStreamKb(r.idle, r.open, n) };
  } finally {
    await Promise.all(started.map((s) => stop(s.proc)));
  }
}

/** The most streams one process here can hold with one socket each, besides its own files. */
export const maxSocketFloorStreams = (fds = fdLimit()): number => fds - 200;

export async function socketFloorPhase(o: { streams: number; log(m: string): void }): Promise<SocketFloorRow[]> {
  if (o.streams > maxSocketFloorStreams())
    throw new Error(`--socket-floor --streams ${o.streams} needs about ${o.streams + 200} open files in one process; ulimit -n allows ${maxSocketFloorStreams()} streams`);
  const rows: SocketFloorRow[] = [];
  for (const flags of [NODE_FLAGS, SMALLEST_YOUNG_GEN]) {
    for (const side of SIDES) {
      const row = await measureSide(side, o.streams, flags);
      o.log(`socket-floor: ${side} (${row.flags}): ${row.rssKb} KB RSS, ${row.heapKb} KB heap a stream`);
      rows.push(row);
    }
  }
  return rows;
}

export interface ProxyFloor {
  flags: string;
  client: Client;
  rssKb: number;
  heapKb: number;
  youngGenKb: number;
}

/**
 * The node:http server side plus one client side, under each set of flags: the least a proxy with
 * that client holds per stream. Each measured process grew a young generation of its own; one
 * proxy process grows one, so the smaller of the two growths is counted once, not twice.
 */
export function proxyFloor(rows: SocketFloorRow[], client: Client = 'undici client'): ProxyFloor[] {
  const byFlags = new Map<string, SocketFloorRow[]>();
  for (const r of rows) if (r.side === 'node:http server' || r.side === client) byFlags.set(r.flags, [...(byFlags.get(r.flags) ?? []), r]);
  // Only flag sets measured on both sides.
  return [...byFlags]
    .filter(([, rs]) => rs.length === 2)
    .map(([flags, [a, b]]) => {
      const twice = Math.min(a.youngGenKb, b.youngGenKb);
      return { flags, client, rssKb: round(a.rssKb + b.rssKb - twice)!, heapKb: round(a.heapKb + b.heapKb)!, youngGenKb: round(a.youngGenKb + b.youngGenKb - twice)! };
    });
}

const leastOf = (floors: ProxyFloor[]) => Math.min(...floors.map((f) => f.rssKb));

export function renderSocketFloor(rows: SocketFloorRow[], streams: number): string {
  const floors = [...proxyFloor(rows), ...proxyFloor(rows, 'plain TCP client')];
  const [least, bare] = [leastOf(proxyFloor(rows)), leastOf(proxyFloor(rows, 'plain TCP client'))];
  const verdict = (kb: number) => (kb <= STREAM_RSS_GOAL_KB ? `under the goal by ${round(STREAM_RSS_GOAL_KB - kb)} KB` : 'over the goal');
  return [
    `### What node:http and undici hold per open stream (${streams.toLocaleString('en-US')} streams per process, one event a second)`,
    '',
    '| side | node flags | RSS per stream | JS heap per stream | young generation growth per stream |',
    '|---|---|---:|---:|---:|',
    ...rows.map((r) => `| ${r.side} | \`${r.flags}\` | ${r.rssKb} KB | ${r.heapKb} KB | ${r.youngGenKb} KB |`),
    ...floors.map((f) => `| **node:http server + ${f.client}** | \`${f.flags}\` | **${f.rssKb} KB** | ${f.heapKb} KB | ${f.youngGenKb} KB |`),
    '',
    `The open-streams goal is <= ${STREAM_RSS_GOAL_KB} KB of RSS per stream. The least node:http and undici hold together here is ${least} KB (${verdict(least)}); node:http with a plain TCP socket to the provider, no HTTP parser on that side, ${bare} KB (${verdict(bare)}), before any state of the proxy's own. (Each side ran in a process of its own; a sum counts one young generation, as one proxy process has.)`,
    '',
  ].join('\n');
}
