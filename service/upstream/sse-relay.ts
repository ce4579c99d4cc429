/**
 * Relays an upstream SSE stream to the client event by event: each complete event is
 * written as soon as it arrives (no buffering beyond the event boundary), with
 * backpressure, while usage and output text are picked up for accounting. The usage-only
 * chunk the gateway asked for (stream_options.include_usage) is hidden from clients that
 * did not ask for it themselves. Responses API streams (typed events: `event: response.…`,
 * data with a `type`) are relayed untouched too; their usage comes from `response.completed`
 * (or `response.incomplete`/`response.failed`), their text from `response.output_text.delta`.
 */
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { EventSummary, inspectEvent, MAX_EVENT_CHARS, MAX_INVALID_RUN, SseSplitter } from '../core/sse';
import { BodyChunks } from './body-chunks';
import type { StreamHandle } from './executor';

export interface RelayResult extends EventSummary {
  /** The upstream failed after the first byte went to the client. */
  interrupted?: 'cut' | 'invalid';
  /** The invalid event was over MAX_EVENT_CHARS. */
  tooLarge?: boolean;
  clientGone: boolean;
}

export function sseErrorEvent(message: string, code: string): string {
  return `data: ${JSON.stringify({ error: { message, type: 'upstream_error', code, param: null } })}\n\n`;
}

/**
 * The Responses API's `error` event (type, code, message, param, sequence_number), plus an
 * `error` object: the openai SDKs raise an APIError for any event whose data has `error`,
 * while a bare `error` event would be yielded as data and go unnoticed.
 */
export function typedErrorEvent(message: string, code: string, sequence: number): string {
  const error = { message, type: 'upstream_error', code, param: null };
  return `event: error\ndata: ${JSON.stringify({ type: 'error', code, message, param: null, sequence_number: sequence, error })}\n\n`;
}

/** The message and code of the clean error event that ends a broken stream. */
export function breakReason(interrupted: 'cut' | 'invalid', tooLarge = false): [message: string, code: string] {
  if (interrupted === 'cut') return ['The provider stream was interrupted after it started; the response is incomplete.', 'stream_interrupted'];
  if (tooLarge) return [`The provider sent a stream event larger than the gateway relays (${MAX_EVENT_CHARS} bytes); the response is incomplete.`, 'invalid_upstream_stream'];
  return ['The provider sent an invalid stream event; the response is incomplete.', 'invalid_upstream_stream'];
}

/** One relay's state: what the events said, the splitter, and whether the client is still there. */
class SseRelay {
  readonly acc: RelayResult = { outputText: '', sawDone: false, clientGone: false };
  private readonly decoder = new StringDecoder('utf8');
  private readonly splitter = new SseSplitter();
  private invalidRun = 0;
  /** The bytes so far ended on an event's end: the next bytes begin one. */
  private aligned = true;
  clientClosed = false;

  constructor(
    private readonly handle: StreamHandle,
    private readonly res: ServerResponse,
    private readonly hideUsage: boolean,
    private readonly rewrite?: (text: string) => string,
  ) {}

  private aborted = false;

  readonly onClose = () => {
    if (!this.res.writableFinished) {
      this.clientClosed = true;
      this.abortUpstream();
    }
  };

  /** Stops the provider's body (once: the relay may decide it from more than one place). */
  private abortUpstream(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.handle.abort();
  }

  /**
   * Writes the complete events of `bytes` that are to be forwarded; false once the stream stays
   * unreadable or an event is over the cap. A promise only while the client pushes back.
   */
  pump(bytes: Buffer): boolean | Promise<boolean> {
    const { acc, res, splitter } = this;
    const whole = this.aligned;
    let out = '';
    let valid = true;
    let skipped = false;
    for (const event of splitter.push(this.decoder.write(bytes))) {
      const verdict = inspectEvent(event.body, this.hideUsage, acc);
      if (verdict === 'invalid') {
        // One unreadable event is skipped (and counted); a run of them means the stream is broken.
        acc.dropped = (acc.dropped ?? 0) + 1;
        skipped = true;
        if (++this.invalidRun < MAX_INVALID_RUN) continue;
        valid = false;
        break;
      }
      this.invalidRun = 0;
      if (verdict === 'forward') out += event.raw;
      else skipped = true;
    }
    // Ends on an event's end, with no character cut (its last byte is a newline): the decoder and splitter keep nothing.
    this.aligned = splitter.empty && bytes[bytes.length - 1] === 10;
    if (valid && splitter.overflow) acc.tooLarge = true; // one event over MAX_EVENT_CHARS: the stream ends with the invalid-event error
    const ok = valid && !splitter.overflow;
    if (!out || this.clientClosed) return ok;
    // Whole events, all forwarded as they are: the bytes as they came, not decoded and encoded again.
    const same = ok && whole && this.aligned && !skipped && !this.rewrite;
    if (res.write(same ? bytes : this.rewrite ? this.rewrite(out) : out)) return ok;
    return Promise.race([once(res, 'drain'), once(res, 'close')]).then(() => ok);
  }

  /** The upstream to its end (or the client's leaving); sets acc.interrupted for a cut or an unusable stream. */
  async run(): Promise<void> {
    const { acc, handle } = this;
    try {
      let ok = await this.pump(handle.first);
      if (ok && !this.clientClosed) ok = handle.rest instanceof BodyChunks ? await this.pushed(handle.rest) : await this.pulled(handle.rest);
      if (!ok) {
        acc.interrupted = 'invalid';
        this.abortUpstream();
      } else if (!this.clientClosed) {
        const tail = this.splitter.rest() + this.decoder.end();
        if (tail.trim() && inspectEvent(tail, this.hideUsage, acc) === 'forward') this.res.write(this.rewrite ? this.rewrite(tail) : tail);
        // A stream that closed before its end ([DONE], a finish_reason, the Responses API's final event) was cut short.
        if (!acc.sawDone && !acc.finished) acc.interrupted = 'cut';
      }
    } catch {
      if (!this.clientClosed) acc.interrupted = 'cut';
    }
  }

  /** Pulls chunk after chunk (a translated stream: an async generator); false once the stream is unusable. */
  private async pulled(rest: AsyncIterator<Buffer>): Promise<boolean> {
    let ok = true;
    while (ok && !this.clientClosed) {
      const next = await rest.next();
      if (next.done) break;
      const pumped = this.pump(next.value);
      ok = pumped === true || pumped === false ? pumped : await pumped;
    }
    return ok;
  }

  /**
   * A provider's own body, pushed: each chunk is relayed in the body's `data` turn, and nothing
   * waits per event while the stream is idle (see BodyChunks.drainTo). False once the stream is unusable.
   */
  private async pushed(chunks: BodyChunks): Promise<boolean> {
    let ok = true;
    const stop = () => {
      ok = false;
      this.abortUpstream(); // the body ends with an error: drainTo settles
    };
    try {
      await chunks.drainTo((bytes) => {
        if (!ok || this.clientClosed) return;
        const pumped = this.pump(bytes);
        if (pumped === false) stop();
        else if (pumped !== true) {
          chunks.pause(); // the client pushes back: read nothing more until it drains
          void pumped.then((more) => (more ? chunks.resume() : stop()));
        }
      });
    } catch (err) {
      if (ok) throw err; // a cut (the caller's catch); not the abort that stop() made
    }
    return ok;
  }
}

/**
 * @param typedEvents the stream is a Responses API stream: a cut ends with its `error` event.
 * @param rewrite applied to the text of each write (the requested model name for a mapped one); undefined costs nothing.
 * @param hold on a cut or invalid event, return without the error event and without ending the response (the caller may continue the stream).
 */
export async function relaySse(handle: StreamHandle, res: ServerResponse, hideUsage: boolean, typedEvents = false, rewrite?: (text: string) => string, hold = false): Promise<RelayResult> {
  const relay = new SseRelay(handle, res, hideUsage, rewrite);
  res.on('close', relay.onClose);
  if (res.destroyed) relay.onClose(); // the client left before the relay began (e.g. while a stored response was recorded)
  try {
    await relay.run();
  } finally {
    handle.done();
    res.off('close', relay.onClose);
  }
  const { acc } = relay;
  acc.clientGone = relay.clientClosed;
  if (acc.interrupted && hold && !acc.clientGone) return acc;
  if (acc.interrupted && !acc.clientGone && !res.writableEnded) {
    const [message, code] = breakReason(acc.interrupted, acc.tooLarge);
    res.write(typedEvents ? typedErrorEvent(message, code, (acc.sequence ?? -1) + 1) : sseErrorEvent(message, code));
  }
  if (!res.writableEnded) res.end();
  return acc;
}
