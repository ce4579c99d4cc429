/**
 * Reading a provider's body: the chunk iterator the stream relay pulls from (bodyChunks) and
 * the capped whole-body read (readCapped), on in-memory streams and on undici bodies over
 * loopback from a server that ends, fails or cuts its answer.
 */
import assert from 'node:assert/strict';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { request } from 'undici';
import { bodyChunks, PrematureCloseError } from '../../service/upstream/body-chunks';
import { BodyTooLargeError, readCapped } from '../../service/upstream/read-body';
import { StreamEventError } from '../../service/providers/types';

const tick = () => new Promise((r) => setImmediate(r));

async function drain(it: AsyncIterator<Buffer>): Promise<{ text: string; error?: unknown }> {
  let text = '';
  try {
    for (let n = await it.next(); !n.done; n = await it.next()) text += n.value.toString('utf8');
  } catch (error) {
    return { text, error };
  }
  return { text };
}

describe('provider body reading (bodyChunks, readCapped)', () => {
  it('gives the chunks in order, whether they arrive before or while the reader waits, then done', async () => {
    const body = new PassThrough();
    const it = bodyChunks(body);
    body.write('a');
    body.write('b');
    await tick();
    const waiting = it.next(); // waits: a and b were queued
    assert.deepEqual((await waiting).value?.toString(), 'a');
    assert.equal((await it.next()).value?.toString(), 'b');
    const next = it.next();
    body.end('c');
    assert.equal((await next).value?.toString(), 'c');
    assert.equal((await it.next()).done, true);
    assert.equal((await it.next()).done, true);
  });

  it('pauses the body while a chunk waits to be taken (backpressure), and resumes when the reader takes it', async () => {
    const body = new PassThrough({ highWaterMark: 4 });
    const it = bodyChunks(body);
    body.write('one');
    await tick();
    assert.equal(body.isPaused(), true);
    const writes = [body.write('two'), body.write('three'), body.write('four')];
    assert.equal(writes.at(-1), false); // the writer is told to wait: nothing is read while the reader does not ask
    assert.equal((await it.next()).value?.toString(), 'one');
    const rest = drain(it);
    body.end();
    assert.equal((await rest).text, 'twothreefour');
  });

  it('delivers what came before an error, then rejects with it, then is done', async () => {
    const body = new PassThrough();
    const it = bodyChunks(body);
    body.write('x');
    await tick();
    body.destroy(new Error('socket hang up'));
    const r = await drain(it);
    assert.equal(r.text, 'x');
    assert.equal((r.error as Error).message, 'socket hang up');
    assert.equal((await it.next()).done, true);
  });

  it('a body closed before its end without an error rejects with a premature close', async () => {
    const body = new PassThrough();
    const it = bodyChunks(body);
    const pending = it.next();
    body.destroy();
    await assert.rejects(pending, PrematureCloseError);
  });

  it('return() destroys the body (a reader that stops early releases the connection)', async () => {
    const body = new PassThrough();
    const it = bodyChunks(body);
    body.write('x');
    await it.next();
    await it.return!();
    assert.equal(body.destroyed, true);
    assert.equal((await it.next()).done, true);
  });

  it('readCapped: the whole body; over the limit it is destroyed with BodyTooLargeError; closed early it rejects', async () => {
    const ok = new PassThrough();
    const whole = readCapped(ok, 10);
    ok.write('12345');
    ok.end('67890');
    assert.equal((await whole).toString(), '1234567890');

    const big = new PassThrough();
    const tooLarge = readCapped(big, 10);
    big.write('123456');
    big.write('789012');
    await assert.rejects(tooLarge, BodyTooLargeError);
    assert.equal(big.destroyed, true);

    const cut = new PassThrough();
    const early = readCapped(cut, 10);
    cut.write('12');
    cut.destroy();
    await assert.rejects(early, PrematureCloseError);

    const failed = new PassThrough();
    const withError = readCapped(failed, 10);
    failed.destroy(new Error('reset'));
    await assert.rejects(withError, /reset/);
  });

  it("with a translator: each chunk as translated, the end's tail, a thrown error after what came before, and a failure after its output", async () => {
    // Upper-cases; "!" ends the stream with an error after this chunk's output; "boom" throws; the end adds "<end>".
    const translator = () => {
      let failed: Error | undefined;
      return {
        push(bytes: Buffer) {
          const text = bytes.toString('utf8');
          if (text === 'boom') throw new StreamEventError('bad event', false);
          if (text.endsWith('!')) failed = new StreamEventError('too large', false);
          return text === 'skip' ? '' : text.toUpperCase();
        },
        end: () => '<end>',
        get failure() {
          return failed;
        },
      };
    };
    const ok = new PassThrough();
    const pushed: string[] = [];
    const done = bodyChunks(ok, translator()).drainTo((c) => pushed.push(c.toString()));
    ok.write('ab');
    await tick();
    ok.write('skip');
    await tick();
    ok.end('c');
    await done;
    assert.deepEqual(pushed, ['AB', 'C', '<end>']);

    const thrown = new PassThrough();
    const it = bodyChunks(thrown, translator());
    thrown.write('x');
    await tick();
    thrown.write('boom');
    await tick();
    const r = await drain(it);
    assert.equal(r.text, 'X');
    assert.ok(r.error instanceof StreamEventError && /bad event/.test(r.error.message));
    assert.equal(thrown.destroyed, true);

    const failing = new PassThrough();
    const got: string[] = [];
    const ends = bodyChunks(failing, translator()).drainTo((c) => got.push(c.toString()));
    failing.write('last!');
    await assert.rejects(ends, /too large/);
    assert.deepEqual(got, ['LAST!']);
    assert.equal(failing.destroyed, true);
  });

  describe('undici bodies over loopback', () => {
    let server: Server;
    let url = '';
    before(async () => {
      server = createServer((req, res) => {
        if (req.url === '/cut') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('data: 1\n\n');
          setTimeout(() => res.socket?.destroy(), 20);
          return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        let i = 0;
        const next = () => {
          if (i === 5) return void res.end('data: [DONE]\n\n');
          res.write(`data: ${i++}\n\n`);
          setTimeout(next, 2);
        };
        next();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => new Promise<void>((r) => server.close(() => r())));

    it('relays a whole stream, and a cut one ends with an error after its first event', async () => {
      const whole = await drain(bodyChunks((await request(`${url}/ok`)).body));
      assert.equal(whole.error, undefined);
      assert.equal(whole.text, 'data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\ndata: [DONE]\n\n');
      const cut = await drain(bodyChunks((await request(`${url}/cut`)).body));
      assert.equal(cut.text, 'data: 1\n\n');
      assert.ok(cut.error instanceof Error);
    });
  });
});
