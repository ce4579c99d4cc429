/**
 * The chunks of a provider's response body as an async iterator, read with `data` events.
 *
 * Node's own `readable[Symbol.asyncIterator]()` is an async generator that calls `read()` and
 * waits for `readable` on every chunk; per relayed stream event that machinery cost more CPU
 * than the relay's parsing (`npm run bench -- --relay-cpu`). Here a chunk that arrives while
 * the reader waits resolves its promise directly; one that arrives before is queued and the
 * body paused until it is taken (backpressure as before: a paused body stops reading the
 * socket). Same contract as Node's iterator where the gateway relies on it: chunks in order,
 * then the body's error (a body closed before its end is an error too), then done; `return()`
 * destroys the body.
 */
import type { Readable } from 'node:stream';
import type { ChunkTranslator } from '../providers/types';

/** A body that closed before it ended, without an error of its own (as Node's iterator names it). */
export class PrematureCloseError extends Error {
  readonly code = 'ERR_STREAM_PREMATURE_CLOSE';
  constructor() {
    super('Premature close');
    this.name = 'PrematureCloseError';
  }
}

type Waiter = { resolve: (r: IteratorResult<Buffer>) => void; reject: (e: unknown) => void };
const DONE: IteratorResult<Buffer> = { value: undefined, done: true };

export class BodyChunks implements AsyncIterableIterator<Buffer> {
  private readonly queue: Buffer[] = [];
  private ended = false;
  private failure: unknown;
  private waiter: Waiter | undefined;
  /** Push mode (drainTo): where each chunk goes as it arrives. */
  private sink: ((chunk: Buffer) => void) | undefined;
  /** The sink asked for a pause. */
  private held = false;

  constructor(
    private readonly body: Readable,
    private readonly translator?: ChunkTranslator,
  ) {
    body.on('data', this.onData);
    body.once('end', () => {
      if (translator) this.translated();
      this.ended = true;
      this.wake();
    });
    body.on('error', (err) => {
      if (!this.ended && this.failure === undefined) this.failure = err;
      this.wake();
    });
    body.once('close', () => {
      if (!this.ended && this.failure === undefined) this.failure = new PrematureCloseError();
      this.wake();
    });
  }

  private readonly onData = (chunk: Buffer) => {
    if (this.translator) this.translated(chunk);
    else this.deliver(chunk);
  };

  /** Delivers what the translator makes of a chunk (or, without one, of the end), then its failure, if any. */
  private translated(chunk?: Buffer): void {
    const translator = this.translator!;
    let out: string;
    try {
      out = chunk ? translator.push(chunk) : translator.end();
    } catch (err) {
      return this.fail(err);
    }
    if (out) this.deliver(Buffer.from(out, 'utf8'));
    const failure = translator.failure;
    if (failure) this.fail(failure);
  }

  private deliver(chunk: Buffer): void {
    if (this.sink) return this.sink(chunk);
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.resolve({ value: chunk, done: false });
      return;
    }
    this.queue.push(chunk);
    this.body.pause();
  }

  /** The stream cannot go on: the reader gets what came before, then `err`; the body is stopped. */
  private fail(err: unknown): void {
    if (this.ended || this.failure !== undefined) return;
    this.failure = err;
    this.body.destroy();
    this.wake();
  }

  /** The error, once: after it the iterator is done. */
  private takeFailure(): unknown {
    const err = this.failure;
    this.failure = undefined;
    this.ended = true;
    return err;
  }

  /** Settles a waiting next() with what is there: a chunk, the error, or the end. */
  private wake(): void {
    const w = this.waiter;
    if (!w || (!this.queue.length && this.failure === undefined && !this.ended)) return;
    this.waiter = undefined;
    if (this.queue.length) w.resolve({ value: this.queue.shift()!, done: false });
    else if (this.failure !== undefined) w.reject(this.takeFailure());
    else w.resolve(DONE);
  }

  next(): Promise<IteratorResult<Buffer>> {
    if (this.queue.length) {
      const value = this.queue.shift()!;
      if (!this.queue.length && !this.ended) this.body.resume();
      return Promise.resolve({ value, done: false });
    }
    if (this.failure !== undefined) return Promise.reject(this.takeFailure());
    if (this.ended) return Promise.resolve(DONE);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /**
   * Push mode, for a reader that stays to the end: the chunks queued so far and then each one as
   * it arrives go to `sink`, in order, with nothing allocated per chunk while the body is idle (a
   * promise per next() that waits a second for a stream's next event outlives two young-generation
   * collections, and the old generation fills with them). Settles at the end, or rejects with the
   * body's error. pause() and resume() are the sink's backpressure.
   */
  drainTo(sink: (chunk: Buffer) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      while (this.queue.length) sink(this.queue.shift()!);
      this.sink = sink;
      this.waiter = { resolve: () => resolve(), reject };
      this.wake();
      if (this.waiter && !this.ended && !this.held) this.body.resume();
    });
  }

  pause(): void {
    this.held = true;
    this.body.pause();
  }

  resume(): void {
    this.held = false;
    this.body.resume();
  }

  return(): Promise<IteratorResult<Buffer>> {
    this.ended = true;
    this.queue.length = 0;
    this.body.destroy();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** The body's chunks, or with a translator what each chunk translates to (a provider that does not speak OpenAI SSE). */
export function bodyChunks(body: Readable, translator?: ChunkTranslator): BodyChunks {
  return new BodyChunks(body, translator);
}
