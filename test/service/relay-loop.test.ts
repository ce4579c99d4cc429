/**
 * The loop both stream relays run (relayChunks): a provider's own body pushed, anything else
 * pulled, the same writes either way; a sink that stops or throws ends the body without an
 * uncaught exception; the translating relay ends a stream whose event is over the cap.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { PassThrough, Writable } from 'node:stream';
import { bodyChunks } from '../../service/upstream/body-chunks';
import { relayChunks, RelaySink } from '../../service/upstream/relay-loop';
import { relayEvents } from '../../service/upstream/event-relay';
import type { StreamHandle } from '../../service/upstream/executor';
import { MAX_EVENT_CHARS } from '../../service/core/sse';

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString('utf8');
    cb();
  }
}

/** Upper-cases each chunk; stops at "stop", throws at "throw". */
function upper(): RelaySink & { taken: number } {
  return {
    taken: 0,
    stopped: false,
    gone: false,
    take(bytes: Buffer) {
      this.taken++;
      const text = bytes.toString('utf8');
      if (text === 'throw') throw new Error('translator failed');
      if (text === 'stop') (this as { stopped: boolean }).stopped = true;
      return text === 'stop' ? '' : text.toUpperCase();
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('stream relay loop (relayChunks)', () => {
  it('pushes a provider body and pulls an async generator, with the same writes', async () => {
    const parts = ['a', 'bc', 'def'];
    const body = new PassThrough();
    const pushedOut = new Sink();
    const pushed = relayChunks(bodyChunks(body), pushedOut as unknown as ServerResponse, upper(), () => assert.fail('no abort'));
    for (const p of parts) {
      body.write(p);
      await tick();
    }
    body.end();
    assert.equal(await pushed, true);

    async function* gen() {
      for (const p of parts) yield Buffer.from(p);
    }
    const pulledOut = new Sink();
    assert.equal(await relayChunks(gen(), pulledOut as unknown as ServerResponse, upper(), () => assert.fail('no abort')), true);
    assert.equal(pushedOut.text, 'ABCDEF');
    assert.equal(pulledOut.text, pushedOut.text);
  });

  it('a sink that stops the stream aborts the body once and reads nothing more', async () => {
    const body = new PassThrough();
    let aborts = 0;
    const sink = upper();
    const run = relayChunks(bodyChunks(body), new Sink() as unknown as ServerResponse, sink, () => {
      aborts++;
      body.destroy(new Error('aborted'));
    });
    body.write('a');
    await tick();
    body.write('stop');
    await tick();
    assert.equal(await run, false);
    assert.equal(aborts, 1);
    assert.equal(sink.taken, 2);
  });

  it('a sink that throws in the body data turn rejects the relay with its error, not an uncaught exception', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const body = new PassThrough();
      let aborts = 0;
      const run = relayChunks(bodyChunks(body), new Sink() as unknown as ServerResponse, upper(), () => {
        aborts++;
        body.destroy(new Error('aborted'));
      });
      body.write('a');
      await tick();
      body.write('throw');
      await assert.rejects(run, /translator failed/);
      await tick();
      assert.equal(aborts, 1);
      assert.deepEqual(uncaught, []);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });

  it("a cut body rejects with the body's error", async () => {
    const body = new PassThrough();
    const run = relayChunks(bodyChunks(body), new Sink() as unknown as ServerResponse, upper(), () => undefined);
    body.write('a');
    await tick();
    body.destroy(new Error('socket hang up'));
    await assert.rejects(run, /socket hang up/);
  });
});

describe('translating relay (relayEvents)', () => {
  it('an event over the cap after the first bytes ends the stream with its error event and stops the provider body', async () => {
    const body = new PassThrough();
    let aborts = 0;
    const handle: StreamHandle = {
      first: Buffer.from('data: {"n":1}\n\n'),
      rest: bodyChunks(body),
      abort: () => {
        aborts++;
        body.destroy(new Error('This operation was aborted'));
      },
      done: () => undefined,
      finish: () => undefined,
    };
    const res = new Sink();
    const same = { event: (text: string) => `${text}\n\n` };
    const relay = relayEvents(handle, res as unknown as ServerResponse, same, (message) => `event: error\ndata: ${JSON.stringify({ message })}\n\n`);
    body.write('data: {"n":2}\n\n');
    await tick();
    body.write(`data: "${'x'.repeat(MAX_EVENT_CHARS)}`); // no terminator: over the cap while it is assembled
    const r = await relay;
    assert.equal(r.interrupted, 'cut');
    assert.equal(r.clientGone, false);
    assert.equal(aborts, 1);
    assert.ok(res.text.startsWith('data: {"n":1}\n\ndata: {"n":2}\n\n'));
    assert.match(res.text, /event: error\ndata: \{"message":"The provider stream was interrupted/);
    assert.ok(!res.text.includes('xxxx'));
  });
});
