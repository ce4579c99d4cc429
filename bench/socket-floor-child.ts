/**
 * The processes of bench/socket-floor.ts, one role each:
 *
 *   node -r tsx/cjs bench/socket-floor-child.ts server N            node:http holding N streamed answers (measured)
 *   node -r tsx/cjs bench/socket-floor-child.ts client N PORT       an undici Pool holding N streamed answers from PORT (measured)
 *   node -r tsx/cjs bench/socket-floor-child.ts tcp-client N PORT   N plain sockets holding the same answers, nothing parsed (measured)
 *   node -r tsx/cjs bench/socket-floor-child.ts peer-client N PORT  N plain sockets, each sending one request to PORT
 *   node -r tsx/cjs bench/socket-floor-child.ts peer-server         plain sockets answering each request with a chunked event stream
 *
 * Servers print `{"port":N}` once listening. Every stream gets one event a second. A measured
 * process takes its idle figures (after a full collection) before its first stream, and once N
 * streams are open and SETTLE_MS have passed, its figures again, printed as one
 * `{"result":{...}}` line (bench/socket-floor.ts divides the difference by N). Needs --expose-gc.
 */
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, Socket } from 'node:net';
import { getHeapSpaceStatistics } from 'node:v8';
import { Pool } from 'undici';

export interface Footprint {
  rss: number;
  heapUsed: number;
  /** The young generation's reserved size: fixed by the node flags, not by the streams. */
  youngGen: number;
}

/** How long every stream stays open before the measurement (bench/socket-floor.ts's test shortens it). */
const SETTLE_MS = Number(process.env.SOCKET_FLOOR_SETTLE_MS ?? 3000);
const OPEN_BATCH = 200;
const EVENT = 'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"hello"},"finish_reason":null}]}\n\n';
const REQUEST = 'POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}';

function footprint(): Footprint {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('socket-floor-child: run with --expose-gc');
  gc();
  gc();
  const m = process.memoryUsage();
  const young = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
  return { rss: m.rss, heapUsed: m.heapUsed, youngGen: young };
}

/** Counts streams as they open; once all N are, reports the footprint after SETTLE_MS. */
function counter(n: number, idle: Footprint): () => void {
  let open = 0;
  return () => {
    if (++open !== n) return;
    setTimeout(() => process.stdout.write(`${JSON.stringify({ result: { idle, open: footprint() } })}\n`), SETTLE_MS);
  };
}

/** `write` now and every second after, until `closed` calls back. */
function everySecond(write: () => void, closed: (f: () => void) => void): void {
  write();
  const t = setInterval(write, 1000);
  closed(() => clearInterval(t));
}

function listening(server: { listen(port: number, host: string, cb: () => void): unknown; address(): unknown }, then: () => void = () => undefined): void {
  server.listen(0, '127.0.0.1', () => {
    then();
    process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
  });
}

function httpServer(n: number): void {
  let opened: () => void = () => undefined;
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      everySecond(
        () => void res.write(EVENT),
        (f) => res.on('close', f),
      );
      opened();
    });
  });
  server.keepAliveTimeout = 65_000;
  listening(server, () => (opened = counter(n, footprint())));
}

function undiciClient(n: number, port: number): void {
  const opened = counter(n, footprint());
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: n + 16, pipelining: 1 });
  const one = () =>
    pool.request({ method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: '{}' }).then((r) => {
      r.body.on('data', () => undefined);
      opened();
    });
  batches(n, () => void one().catch((e: Error) => process.stderr.write(`client: ${e.message}\n`)));
}

/** A plain socket to `port` that sends one request and reads (and parses) nothing. */
function requestSocket(port: number): Socket {
  const s: Socket = connect(port, '127.0.0.1', () => s.write(REQUEST));
  s.on('data', () => undefined);
  return s;
}

/** The least a client can hold a stream with: a socket that sends the request and parses nothing. */
function tcpClient(n: number, port: number): void {
  const opened = counter(n, footprint());
  batches(n, () => {
    const s = requestSocket(port);
    s.once('data', opened);
    s.on('error', (e) => process.stderr.write(`tcp-client: ${e.message}\n`));
  });
}

/** Calls `open` n times, OPEN_BATCH at a time every 50 ms (real streams do not all start in one tick). */
function batches(n: number, open: () => void): void {
  let i = 0;
  const go = () => {
    for (let k = 0; k < OPEN_BATCH && i < n; k++, i++) open();
    if (i < n) setTimeout(go, 50);
  };
  go();
}

function peerClient(n: number, port: number): void {
  batches(n, () => void requestSocket(port).on('error', () => undefined));
}

function peerServer(): void {
  const chunk = `${Buffer.byteLength(EVENT).toString(16)}\r\n${EVENT}\r\n`;
  const server = createServer((s) => {
    s.on('error', () => undefined);
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n');
      everySecond(
        () => void s.write(chunk),
        (f) => s.on('close', f),
      );
    });
  });
  listening(server);
}

if (require.main === module) {
  const [role, n, port] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
  if (role === 'server') httpServer(n);
  else if (role === 'client') undiciClient(n, port);
  else if (role === 'tcp-client') tcpClient(n, port);
  else if (role === 'peer-client') peerClient(n, port);
  else if (role === 'peer-server') peerServer();
  else throw new Error(`socket-floor-child: unknown role ${role}`);
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
