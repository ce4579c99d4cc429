/**
 * A non-streaming provider answer read whole on undici's dispatch interface
 * (service/upstream/buffered-answer.ts), against a real server over loopback: what `request` and
 * read-body.ts did, the answer in chunks, its caps, the headers callback, cancelling before and
 * during the call, and a provider that hangs up in the middle.
 */
import assert from 'node:assert/strict';
import { createServer, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { dispatchBuffered } from '../../service/upstream/buffered-answer';
import { Cancel } from '../../service/upstream/cancel';
import { BodyTooLargeError } from '../../service/upstream/read-body';

type Handler = (res: ServerResponse) => void;

describe('a non-streaming answer read whole (dispatchBuffered)', () => {
  let server: Server;
  let pool: Pool;
  let handler: Handler;
  let origin: string;

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => handler(res));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    pool = new Pool(origin, { connections: 4 });
  });
  after(async () => {
    await pool.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const call = (over: { limit?: number; errorLimit?: number; signal?: Cancel; onHeaders?: () => void } = {}) =>
    dispatchBuffered(
      pool,
      { origin, method: 'POST', path: '/v1/chat/completions', body: '{}', headersTimeout: 2_000, bodyTimeout: 2_000 },
      { limit: 1024, errorLimit: 64, signal: over.signal ?? new Cancel(), ...over },
    );

  it('gives the status, the headers and the whole body, however many chunks it came in; the headers callback runs once, before the end', async () => {
    handler = (res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-ratelimit-remaining-requests': '7' });
      res.write('{"id":');
      setTimeout(() => res.end('"chatcmpl-1"}'), 20);
    };
    const seen: string[] = [];
    const r = await call({ onHeaders: () => seen.push('headers') });
    seen.push('end');
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['x-ratelimit-remaining-requests'], '7');
    assert.equal(r.body.toString(), '{"id":"chatcmpl-1"}');
    assert.deepEqual(seen, ['headers', 'end']);
  });

  it('an error answer is given with its body; one over errorLimit is given with an empty body', async () => {
    handler = (res) => res.writeHead(429, { 'retry-after': '2' }).end('{"error":{"message":"slow down"}}');
    const small = await call();
    assert.equal(small.statusCode, 429);
    assert.equal(small.headers['retry-after'], '2');
    assert.equal(small.body.toString(), '{"error":{"message":"slow down"}}');
    handler = (res) => res.writeHead(500).end('x'.repeat(100));
    const big = await call();
    assert.equal(big.statusCode, 500);
    assert.equal(big.body.length, 0);
  });

  it('a 2xx answer over the limit fails with BodyTooLargeError, and the pool still serves the next call', async () => {
    handler = (res) => {
      res.writeHead(200);
      res.write('x'.repeat(800));
      res.end('y'.repeat(800));
    };
    await assert.rejects(call(), (err) => err instanceof BodyTooLargeError && err.limit === 1024);
    handler = (res) => res.writeHead(200).end('{}');
    assert.equal((await call()).body.toString(), '{}');
  });

  it('a cancelled signal: refused before the call, aborted during it (undici RequestAbortedError)', async () => {
    const before = new Cancel();
    before.abort();
    await assert.rejects(call({ signal: before }), { code: 'UND_ERR_ABORTED' });
    handler = (res) => res.writeHead(200).write('{'); // never ends
    const during = new Cancel();
    const pending = call({ signal: during, onHeaders: () => during.abort() });
    await assert.rejects(pending, { code: 'UND_ERR_ABORTED' });
  });

  it('a provider that hangs up in the middle of the answer: undici’s socket error, not a short body', async () => {
    handler = (res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('{"id":');
      setTimeout(() => res.socket?.destroy(), 10);
    };
    await assert.rejects(call(), (err: Error & { code?: string }) => err.code === 'UND_ERR_SOCKET');
  });

  it('a provider that stops sending: undici’s body timeout', async () => {
    handler = (res) => res.writeHead(200).write('{');
    await assert.rejects(dispatchBuffered(pool, { origin, method: 'POST', path: '/', body: '{}', headersTimeout: 2_000, bodyTimeout: 100 }, { limit: 1024, errorLimit: 64, signal: new Cancel() }), {
      code: 'UND_ERR_BODY_TIMEOUT',
    });
  });
});
