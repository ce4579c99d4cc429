/**
 * The loop every stream relay runs over a provider's body after its first bytes. For each chunk
 * the relay's `take` says what to write to the client ('' for nothing), and `stopped` whether
 * the stream can go on; writes wait for a client that pushes back.
 *
 * A provider's body (BodyChunks, translated or not: it applies the provider's ChunkTranslator in
 * the same turn) is pushed: each chunk is relayed in the body's `data` turn and nothing waits per
 * event while the stream is idle. Awaiting next() instead leaves a promise, its resolvers and a
 * reaction waiting for the next event, about a second on a real stream: long enough to outlive two
 * young-generation collections, so at thousands of open streams the old generation fills with
 * them and its collection stalls every stream at once (docs/bench.md). Any other iterator is pulled.
 */
import type { ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import { BodyChunks } from './body-chunks';

export interface RelaySink {
  /** What to write to the client for these bytes ('' for nothing). */
  take(bytes: Buffer): string | Buffer;
  /** The stream cannot go on (set by take). */
  readonly stopped: boolean;
  /** The client left. */
  readonly gone: boolean;
}

/**
 * Until the client can take more (or has left). Both listeners go once either fires: racing two
 * `once()` promises left a 'close' listener behind per wait, thousands on a slow client's stream.
 */
export function drained(res: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** Writes `out` unless it is empty or the client left; waits while the client pushes back. */
export async function writeOut(res: ServerResponse, sink: RelaySink, out: string | Buffer): Promise<void> {
  if (out && !sink.gone && !res.write(out)) await drained(res);
}

/**
 * Relays `rest` to its end: true, or false once the sink stopped the stream (then `abort` has
 * ended the provider's body); rejects with the body's error (a cut, or the client's leaving).
 */
export async function relayChunks(rest: AsyncIterator<Buffer>, res: ServerResponse, sink: RelaySink, abort: () => void): Promise<boolean> {
  if (!(rest instanceof BodyChunks)) {
    while (!sink.stopped && !sink.gone) {
      const next = await rest.next();
      if (next.done) break;
      await writeOut(res, sink, sink.take(next.value));
    }
    if (sink.stopped) abort();
    return !sink.stopped;
  }
  let aborted = false;
  let failure: unknown;
  const stop = (err?: unknown) => {
    failure = err;
    aborted = true;
    abort(); // the body ends with an error: drainTo settles
  };
  try {
    await rest.drainTo((bytes) => {
      if (aborted || sink.stopped || sink.gone) return;
      let out: string | Buffer;
      try {
        out = sink.take(bytes);
      } catch (err) {
        return stop(err); // thrown in the body's data event it would be uncaught: it ends the stream as a pulled one's would
      }
      if (out && !sink.gone && !res.write(out)) {
        rest.pause(); // read nothing more until the client drains
        void drained(res).then(() => rest.resume());
      }
      if (sink.stopped) stop();
    });
  } catch (err) {
    if (!aborted) throw err;
  }
  if (failure !== undefined) throw failure;
  return !sink.stopped;
}
