/**
 * A provider call whose answer is read whole (a non-streaming answer), on undici's dispatch
 * interface: the chunks go into one array as undici hands them over. undici's `request` wraps
 * the same call in an async resource, a Readable body and its events, which cost ~5 µs a call
 * here and are of no use to an answer that is only ever read whole.
 *
 * The behaviour is `request`'s, read with read-body.ts: an answer over `limit` bytes is cut and
 * rejected with BodyTooLargeError; an error answer (not 2xx) over `errorLimit` is cut and
 * resolved empty (readErrorBody's best effort); a cancelled signal aborts the call with
 * undici's RequestAbortedError; any other failure is undici's own error (timeouts, a reset).
 */
import { errors } from 'undici';
import type Dispatcher from 'undici/types/dispatcher';
import type { IncomingHttpHeaders } from 'undici/types/header';
import type { CancelSignal } from './cancel';
import { BodyTooLargeError } from './read-body';

export interface BufferedResponse {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface BufferedCall {
  /** The answer's longest length (2xx); beyond it the call fails with BodyTooLargeError. */
  limit: number;
  /** An error answer's longest length kept; beyond it its body is given as empty. */
  errorLimit: number;
  signal: CancelSignal;
  /** Called when the answer's status and headers are in. */
  onHeaders?: () => void;
}

const EMPTY = Buffer.alloc(0);

class BufferedAnswer implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private chunks: Buffer[] = [];
  private size = 0;
  private statusCode = 0;
  private headers: IncomingHttpHeaders = {};
  private settled = false;
  private readonly onAbort = () => this.controller?.abort(new errors.RequestAbortedError());

  constructor(
    private readonly call: BufferedCall,
    private readonly resolve: (r: BufferedResponse) => void,
    private readonly reject: (err: Error) => void,
  ) {
    call.signal.addEventListener('abort', this.onAbort);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // Cancelled while it waited for a connection: it goes no further.
    if (this.call.signal.aborted) controller.abort(new errors.RequestAbortedError());
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // 1xx: informational, the answer follows
    this.statusCode = statusCode;
    this.headers = headers;
    this.call.onHeaders?.();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    this.size += chunk.length;
    const ok = this.statusCode >= 200 && this.statusCode < 300;
    if (this.size <= (ok ? this.call.limit : this.call.errorLimit)) return void this.chunks.push(chunk);
    // Too long: a 2xx answer is a provider fault; an error answer is relayed without its body.
    if (ok) this.fail(new BodyTooLargeError(this.call.limit));
    else this.succeed(EMPTY);
    controller.abort(new errors.RequestAbortedError());
  }

  onResponseEnd(): void {
    const { chunks, size } = this;
    this.succeed(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.fail(err);
  }

  private succeed(body: Buffer): void {
    if (this.finish()) this.resolve({ statusCode: this.statusCode, headers: this.headers, body });
  }

  private fail(err: Error): void {
    if (this.finish()) this.reject(err);
  }

  /** True the first time: the call is settled, its chunks and its listener let go. */
  private finish(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.chunks = [];
    this.call.signal.removeEventListener('abort', this.onAbort);
    return true;
  }
}

/** Dispatches `options` on `dispatcher` and reads the answer whole (see the module's comment). */
export function dispatchBuffered(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, call: BufferedCall): Promise<BufferedResponse> {
  if (call.signal.aborted) return Promise.reject(new errors.RequestAbortedError());
  return new Promise((resolve, reject) => {
    try {
      dispatcher.dispatch(options, new BufferedAnswer(call, resolve, reject));
    } catch (err) {
      reject(err as Error);
    }
  });
}
