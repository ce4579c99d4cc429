/**
 * The stream relay on its own: a scripted upstream (an async iterator the test steps through)
 * and an in-memory response, so event boundaries, usage, cuts, invalid events and a client
 * leaving are checked deterministically, without sockets or timers.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { PassThrough, Writable } from 'node:stream';
import { bodyChunks } from '../../service/upstream/body-chunks';
import type { StreamHandle } from '../../service/upstream/executor';
import { relaySse } from '../../service/upstream/sse-relay';

class MemoryResponse extends Writable {
  text = '';
  /** Each write as it was handed over (a Buffer, or the string's bytes). */
  writes: Buffer[] = [];
  constructor() {
    super({ decodeStrings: true });
  }
  override write(chunk: unknown, ...rest: never[]): boolean {
    this.handed.push(chunk);
    return super.write(chunk as Buffer, ...rest);
  }
  /** What write() was called with, before any conversion. */
  handed: unknown[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.writes.push(chunk);
    this.text += chunk.toString('utf8');
    cb();
  }
}

/** An upstream that yields `parts` after `first`, then ends or throws; records abort and done. */
function upstream(first: string | Buffer, parts: Array<string | Buffer | Error>, onNext?: (i: number) => void) {
  const state = { aborted: 0, done: 0 };
  let i = 0;
  const rest: AsyncIterator<Buffer> = {
    async next() {
      onNext?.(i);
      if (i >= parts.length) return { done: true, value: undefined };
      const p = parts[i++];
      if (p instanceof Error) throw p;
      return { done: false, value: Buffer.isBuffer(p) ? p : Buffer.from(p, 'utf8') };
    },
  };
  const handle: StreamHandle = { first: Buffer.isBuffer(first) ? first : Buffer.from(first, 'utf8'), rest, abort: () => void state.aborted++, done: () => void state.done++, finish: () => undefined };
  return { handle, state };
}

/** A client whose socket takes each write a little later, with a small buffer: res.write returns false often. */
class SlowResponse extends MemoryResponse {
  constructor() {
    super();
    (this as unknown as { _writableState: { highWaterMark: number } })._writableState.highWaterMark = 64;
  }
  override _write(chunk: Buffer, enc: BufferEncoding, cb: () => void): void {
    setTimeout(() => super._write(chunk, enc, cb), 1);
  }
}

const tick = () => new Promise((r) => setImmediate(r));

const chunk = (content: string) => `data: ${JSON.stringify({ model: 'm-1', choices: [{ delta: { content } }] })}\n\n`;
const usageChunk = `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 7, completion_tokens: 2, total_tokens: 9 } })}\n\n`;

describe('stream relay (scripted upstream, in-memory response)', () => {
  it('forwards whole events across chunk boundaries, picks up text, model and usage, and hides the usage-only chunk when asked', async () => {
    const events = chunk('Hel') + chunk('lo') + usageChunk + 'data: [DONE]\n\n';
    const { handle, state } = upstream(events.slice(0, 10), [events.slice(10, 50), events.slice(50, 51), events.slice(51)]);
    const res = new MemoryResponse();
    const r = await relaySse(handle, res as unknown as ServerResponse, true);
    assert.equal(res.text, chunk('Hel') + chunk('lo') + 'data: [DONE]\n\n');
    assert.equal(r.outputText, 'Hello');
    assert.equal(r.model, 'm-1');
    assert.equal(r.usage?.prompt_tokens, 7);
    assert.equal(r.sawDone, true);
    assert.equal(r.interrupted, undefined);
    assert.deepEqual(state, { aborted: 0, done: 1 });
    assert.equal(res.writableEnded, true);
  });

  it('a cut after the first byte ends the stream with an OpenAI-shaped error event', async () => {
    const { handle } = upstream(chunk('a'), [chunk('b'), new Error('socket hang up')]);
    const res = new MemoryResponse();
    const r = await relaySse(handle, res as unknown as ServerResponse, false);
    assert.equal(r.interrupted, 'cut');
    assert.ok(res.text.startsWith(chunk('a') + chunk('b')));
    const last = JSON.parse(res.text.trim().split('\n\n').pop()!.slice('data: '.length));
    assert.equal(last.error.code, 'stream_interrupted');
    assert.equal(res.writableEnded, true);
  });

  it('one invalid event is skipped and counted; the rest of the stream is relayed', async () => {
    const { handle, state } = upstream(chunk('a'), ['data: {oops\n\n', chunk('b'), 'data: [DONE]\n\n']);
    const res = new MemoryResponse();
    const r = await relaySse(handle, res as unknown as ServerResponse, false);
    assert.equal(r.interrupted, undefined);
    assert.equal(r.dropped, 1);
    assert.equal(state.aborted, 0);
    assert.equal(res.text, chunk('a') + chunk('b') + 'data: [DONE]\n\n');
  });

  it('a run of invalid events aborts the upstream, is not forwarded, and ends with invalid_upstream_stream', async () => {
    const { handle, state } = upstream(chunk('a'), ['data: {oops\n\n', 'data: {oops\n\n', 'data: {oops\n\n', chunk('never')]);
    const res = new MemoryResponse();
    const r = await relaySse(handle, res as unknown as ServerResponse, false);
    assert.equal(r.interrupted, 'invalid');
    assert.equal(state.aborted, 1);
    assert.ok(!res.text.includes('oops') && !res.text.includes('never'));
    assert.match(res.text, /"code":"invalid_upstream_stream"/);
  });

  it('a stream that closes without [DONE] or a finish_reason counts as cut', async () => {
    const { handle } = upstream(chunk('a'), [chunk('b')]);
    const res = new MemoryResponse();
    const r = await relaySse(handle, res as unknown as ServerResponse, false);
    assert.equal(r.interrupted, 'cut');
    assert.match(res.text, /"code":"stream_interrupted"/);
  });

  it('a Responses API stream cut ends with the typed error event, numbered after the last sequence_number', async () => {
    const typed = (type: string, seq: number, extra: object = {}) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq, ...extra })}\n\n`;
    const { handle } = upstream(typed('response.created', 0, { response: { id: 'resp_1' } }), [typed('response.output_text.delta', 1, { delta: 'hi' }), new Error('cut')]);
    const res = new MemoryResponse();
    const r = await relaySse(handle, res as unknown as ServerResponse, false, true);
    assert.equal(r.responseId, 'resp_1');
    assert.equal(r.outputText, 'hi');
    assert.match(res.text, /event: error\ndata: \{"type":"error","code":"stream_interrupted".*"sequence_number":2/);
  });

  it('a client that leaves mid-stream aborts the upstream and gets nothing more written', async () => {
    const res = new MemoryResponse();
    const { handle, state } = upstream(chunk('a'), [chunk('b'), chunk('c')], (i) => {
      if (i === 1) res.destroy();
    });
    const r = await relaySse(handle, res as unknown as ServerResponse, false);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(r.clientGone, true);
    assert.ok(state.aborted >= 1);
    assert.ok(!res.text.includes('"c"'));
    assert.equal(state.done, 1);
  });

  it('relays every byte of multi-byte characters exactly, wherever the upstream splits them, and hands aligned chunks on as they came', async () => {
    const events = [chunk('héllo wörld '), chunk('日本語のテキスト'), chunk('🙂🚀 done'), usageChunk, 'data: [DONE]\n\n'];
    const bytes = Buffer.from(events.join(''), 'utf8');
    const text = bytes.toString('utf8');
    // Every cut point in turn (first part, rest), and three-way cuts around the multi-byte characters.
    const cuts: number[][] = [];
    for (let i = 1; i < bytes.length; i += 3) cuts.push([i]);
    const multi = bytes.indexOf(Buffer.from('日'));
    for (let i = multi - 2; i < multi + 8; i++) for (let j = i + 1; j < i + 5; j++) cuts.push([i, j]);
    for (const at of cuts) {
      const parts = [0, ...at, bytes.length].slice(1).map((end, k, ends) => bytes.subarray(k ? ends[k - 1] : 0, end));
      const { handle } = upstream(parts[0], parts.slice(1));
      const res = new MemoryResponse();
      const r = await relaySse(handle, res as unknown as ServerResponse, false);
      assert.equal(Buffer.concat(res.writes).toString('utf8'), text, `cut at ${at.join(',')}`);
      assert.equal(r.outputText, 'héllo wörld 日本語のテキスト🙂🚀 done');
      assert.equal(r.interrupted, undefined);
    }
    // Chunks that each hold whole events: the upstream's own Buffers go to the client, not re-encoded strings.
    const aligned = events.map((e) => Buffer.from(e, 'utf8'));
    const { handle } = upstream(aligned[0], aligned.slice(1));
    const res = new MemoryResponse();
    await relaySse(handle, res as unknown as ServerResponse, false);
    assert.deepEqual(
      res.handed.map((w) => (aligned as unknown[]).indexOf(w)),
      [0, 1, 2, 3, 4],
    );
  });

  it('after a chunk that ended on an event but inside a character, the next chunk is decoded, not handed on as it came', async () => {
    // The second part finishes an event begun in the first (so it is written as decoded text), then holds
    // a whole event and the first byte of "é"; the third holds the rest of "é" and a comment event.
    const bytes = Buffer.from(chunk('a') + chunk('b') + 'é: comment\n\n' + chunk('c') + 'data: [DONE]\n\n', 'utf8');
    const cut = bytes.indexOf(Buffer.from('é', 'utf8')) + 1;
    const { handle } = upstream(bytes.subarray(0, 5), [bytes.subarray(5, cut), bytes.subarray(cut)]);
    const res = new MemoryResponse();
    const r = await relaySse(handle, res as unknown as ServerResponse, false);
    assert.deepEqual(Buffer.concat(res.writes), bytes);
    assert.equal(r.outputText, 'abc');
  });

  describe('a provider body, pushed (BodyChunks.drainTo)', () => {
    /** A provider body the test writes to; abort() fails it as undici's abort does. */
    function body(first: string) {
      const stream = new PassThrough();
      const state = { aborted: 0, done: 0 };
      const handle: StreamHandle = {
        first: Buffer.from(first, 'utf8'),
        rest: bodyChunks(stream),
        abort: () => {
          state.aborted++;
          stream.destroy(new Error('This operation was aborted'));
        },
        done: () => void state.done++,
        finish: () => undefined,
      };
      return { stream, handle, state };
    }

    it('relays each chunk as it comes, to the end, with usage and text', async () => {
      const { stream, handle, state } = body(chunk('a'));
      const res = new MemoryResponse();
      const relay = relaySse(handle, res as unknown as ServerResponse, true);
      stream.write(chunk('b'));
      await tick();
      assert.equal(res.text, chunk('a') + chunk('b')); // relayed before the stream ends
      stream.write(usageChunk.slice(0, 20));
      stream.end(usageChunk.slice(20) + 'data: [DONE]\n\n');
      const r = await relay;
      assert.equal(res.text, chunk('a') + chunk('b') + 'data: [DONE]\n\n');
      assert.equal(r.outputText, 'ab');
      assert.equal(r.usage?.completion_tokens, 2);
      assert.equal(r.interrupted, undefined);
      assert.deepEqual(state, { aborted: 0, done: 1 });
    });

    it('a client that pushes back pauses the provider body until it drains; nothing is lost or reordered', async () => {
      const { stream, handle } = body(chunk('0'));
      const res = new SlowResponse();
      const relay = relaySse(handle, res as unknown as ServerResponse, false);
      let pausedSeen = false;
      let mostCloseListeners = 0;
      res.on('newListener', (event) => {
        if (event === 'close') mostCloseListeners = Math.max(mostCloseListeners, res.listenerCount('close') + 1);
      });
      for (let i = 1; i < 40; i++) {
        stream.write(chunk(String(i)));
        await tick();
        pausedSeen ||= stream.isPaused();
      }
      stream.end('data: [DONE]\n\n');
      const r = await relay;
      if (!res.writableFinished) await once(res, 'finish'); // the slow client takes the last writes after the relay ends the response
      assert.ok(pausedSeen, 'the body was paused while the client was full');
      assert.ok(mostCloseListeners <= 2, `no listener left behind per wait for the client (${mostCloseListeners} 'close' listeners)`);
      assert.equal(r.outputText, Array.from({ length: 40 }, (_x, i) => String(i)).join(''));
      assert.equal(res.text, Array.from({ length: 40 }, (_x, i) => chunk(String(i))).join('') + 'data: [DONE]\n\n');
    });

    it('a cut ends with the error event; a run of invalid events aborts the body and ends with invalid_upstream_stream', async () => {
      const cut = body(chunk('a'));
      const res = new MemoryResponse();
      const relay = relaySse(cut.handle, res as unknown as ServerResponse, false);
      cut.stream.write(chunk('b'));
      await tick();
      cut.stream.destroy(new Error('socket hang up'));
      const r = await relay;
      assert.equal(r.interrupted, 'cut');
      assert.match(res.text, /"code":"stream_interrupted"/);

      const bad = body(chunk('a'));
      const res2 = new MemoryResponse();
      const relay2 = relaySse(bad.handle, res2 as unknown as ServerResponse, false);
      bad.stream.write('data: {oops\n\ndata: {oops\n\ndata: {oops\n\n' + chunk('never'));
      const r2 = await relay2;
      assert.equal(r2.interrupted, 'invalid');
      assert.equal(bad.state.aborted, 1);
      assert.ok(!res2.text.includes('never'));
      assert.match(res2.text, /"code":"invalid_upstream_stream"/);
    });

    it('a client that leaves aborts the provider body and nothing more is written', async () => {
      const { stream, handle, state } = body(chunk('a'));
      const res = new MemoryResponse();
      const relay = relaySse(handle, res as unknown as ServerResponse, false);
      await tick();
      res.destroy();
      await tick();
      if (!stream.destroyed) stream.write(chunk('late'));
      const r = await relay;
      assert.equal(r.clientGone, true);
      assert.equal(r.interrupted, undefined);
      assert.ok(state.aborted >= 1);
      assert.ok(!res.text.includes('late'));
    });
  });
});
