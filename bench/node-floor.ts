/**
 * The least a Node.js proxy costs on this machine: node:http in, undici out (the gateway's own
 * server and client), and nothing else: no auth, no JSON parsing, no limits, no accounting,
 * no metrics, no log. Run in its own process by the benchmark as the `node-floor` target:
 *
 *   node -r tsx/cjs bench/node-floor.ts --port 0 --upstream http://127.0.0.1:PORT
 *
 * Whatever the gateway spends above this floor is its features; what the floor spends above
 * nginx is the runtime. Prints `{"port":N}` on stdout once listening.
 */
import { createServer } from 'node:http';
import { Pool } from 'undici';

function arg(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) throw new Error(`--${name} is required`);
  return process.argv[i + 1];
}

const connections = process.argv.includes('--connections') ? Number(arg('connections')) : 128;
const upstream = new Pool(arg('upstream'), { connections, pipelining: 1 });

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    upstream
      .request({
        method: 'POST',
        path: req.url ?? '/',
        headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' },
        body: Buffer.concat(chunks),
      })
      .then(
        (up) => {
          res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/json') });
          if (String(up.headers['content-type']).startsWith('text/event-stream')) res.flushHeaders();
          up.body.on('data', (c: Buffer) => res.write(c));
          up.body.on('end', () => res.end());
          up.body.on('error', () => res.destroy());
        },
        () => {
          res.writeHead(502).end();
        },
      );
  });
});

server.keepAliveTimeout = 65_000;
server.listen(Number(arg('port')), '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
