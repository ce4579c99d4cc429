/**
 * Relays an upstream SSE stream to the client event by event: each complete event is
 * written as soon as it arrives (no buffering beyond the event boundary), with
 * backpressure, while usage and output text are picked up for accounting. The usage-only
 * chunk the gateway asked for (stream_options.include_usage) is hidden from clients that
 * did not ask for it themselves. Responses API streams (typed events: `event: response.…`,
 * data with a `type`) are relayed untouched too; their usage comes from `response.completed`
 * (or `response.incomplete`/`response.failed`), their text from `response.output_text.delta`.
 */
import type { ServerResponse } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { EventSummary, inspectEvent, MAX_EVENT_CHARS, MAX_INVALID_RUN, SseSplitter } from '../core/sse';
import type { StreamHandle } from './executor';
import { relayChunks, RelaySink, writeOut } from './relay-loop';

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
class SseRelay implements RelaySink {
  readonly acc: RelayResult = { outputText: '', outputPieces: 0, sawDone: false, clientGone: false };
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

  /** The stream stays unreadable, or an event is over the cap. */
  stopped = false;

  get gone(): boolean {
    return this.clientClosed;
  }

  /** The complete events of `bytes` that are to be forwarded, as they are to be written ('' for none); sets `stopped`. */
  take(bytes: Buffer): string | Buffer {
    const { acc, splitter } = this;
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
    this.stopped = !valid || splitter.overflow;
    if (!out) return out;
    // Whole events, all forwarded as they are: the bytes as they came, not decoded and encoded again.
    if (!this.stopped && whole && this.aligned && !skipped && !this.rewrite) return bytes;
    return this.rewrite ? this.rewrite(out) : out;
  }

  /** The upstream to its end (or the client's leaving); sets acc.interrupted for a cut or an unusable stream. */
  async run(): Promise<void> {
    const { acc, handle, res } = this;
    try {
      await writeOut(res, this, this.take(handle.first));
      const ok = !this.stopped && !this.clientClosed ? await relayChunks(handle.rest, res, this, () => this.abortUpstream()) : !this.stopped;
      if (!ok) {
        acc.interrupted = 'invalid';
        this.abortUpstream();
      } else if (!this.clientClosed) {
        const tail = this.splitter.rest() + this.decoder.end();
        if (tail.trim() && inspectEvent(tail, this.hideUsage, acc) === 'forward') res.write(this.rewrite ? this.rewrite(tail) : tail);
        // A stream that closed before its end ([DONE], a finish_reason, the Responses API's final event) was cut short.
        if (!acc.sawDone && !acc.finished) acc.interrupted = 'cut';
      }
    } catch {
      if (!this.clientClosed) acc.interrupted = 'cut';
    }
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
