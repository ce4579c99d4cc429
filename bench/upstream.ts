/**
 * A fast fake OpenAI upstream for the benchmark, run in its own process:
 *
 *   node -r tsx/cjs bench/upstream.ts --port 0 [--chunks 20] [--interval-ms 5] [--first-byte-ms 0]
 *
 * Plain node:http, responses precomputed once: a chat completion (with usage) for every
 * POST, or, when the body asks for `"stream": true`, an SSE stream of `--chunks` content
 * events `--interval-ms` apart (the first after `--first-byte-ms`), a usage event and
 * [DONE]. The body is never JSON-parsed (a substring test finds `stream: true`), so the
 * upstream costs as little CPU as possible and the measurement is about the proxy.
 * Prints `{"port":N}` on stdout once listening; exits on SIGTERM/SIGINT or stdin closing.
 */
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const port = arg('port', 0);
const chunks = arg('chunks', 20);
const intervalMs = arg('interval-ms', 5);
const firstByteMs = arg('first-byte-ms', 0);

const completion = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1700000000,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Hello! How can I help you today?' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 },
  }),
);
const completionHeaders = { 'content-type': 'application/json', 'content-length': String(completion.length) };

const event = (obj: unknown) => `data: ${JSON.stringify(obj)}\n\n`;
const chunkEvents = Array.from({ length: chunks }, (_x, i) =>
  event({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-4o-mini', choices: [{ index: 0, delta: { content: `tok${i} ` }, finish_reason: null }] }),
);
const tail =
  event({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1700000000, model: 'gpt-4o-mini', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }) +
  event({
    id: 'chatcmpl-bench',
    object: 'chat.completion.chunk',
    created: 1700000000,
    model: 'gpt-4o-mini',
    choices: [],
    usage: { prompt_tokens: 12, completion_tokens: chunks, total_tokens: 12 + chunks },
  }) +
  'data: [DONE]\n\n';
// x-accel-buffering: nginx relays the stream as it comes (as it would for a real provider's SSE).
const streamHeaders = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' };

const STREAM_TRUE = /"stream"\s*:\s*true/;

function stream(res: ServerResponse): void {
  res.writeHead(200, streamHeaders);
  let i = 0;
  const next = () => {
    if (res.destroyed) return;
    if (i < chunkEvents.length) {
      res.write(chunkEvents[i++]);
      setTimeout(next, intervalMs);
    } else {
      res.end(tail);
    }
  };
  if (firstByteMs > 0) setTimeout(next, firstByteMs);
  else next();
}

const models = Buffer.from(JSON.stringify({ object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model', created: 0, owned_by: 'bench' }] }));

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  if (req.method !== 'POST') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(models.length) }).end(models);
    return;
  }
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d: string) => (body += d));
  req.on('end', () => {
    if (STREAM_TRUE.test(body)) stream(res);
    else res.writeHead(200, completionHeaders).end(completion);
  });
});
server.keepAliveTimeout = 65_000;
const sockets = new Set<Socket>();
server.on('connection', (s: Socket) => {
  sockets.add(s);
  s.once('close', () => sockets.delete(s));
});

server.listen(port, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof a === 'object' && a ? a.port : 0 })}\n`);
});

const stop = () => {
  server.close();
  for (const s of sockets) s.destroy();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The parent holds our stdin: when it dies (even by SIGKILL), stdin ends and so do we.
process.stdin.on('end', stop);
process.stdin.resume();
