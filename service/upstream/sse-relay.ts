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
import { chatUsage, responsesUsage, Usage } from '../core/endpoints';
import type { StreamHandle } from './executor';

export interface RelayResult {
  usage?: Usage;
  /** The model the provider says answered (the first chunk's `model`). */
  model?: string;
  /** Text the model produced, for token estimation when no usage came. */
  outputText: string;
  sawDone: boolean;
  /** Responses API streams: the last event's sequence_number (the gateway's error event follows it). */
  sequence?: number;
  /** Responses API streams: the response id from response.created (for the object's owner record). */
  responseId?: string;
  /** The upstream failed after the first byte went to the client. */
  interrupted?: 'cut' | 'invalid';
  clientGone: boolean;
}

/** The blank line that ends an SSE event. */
export const EVENT_END = /\r?\n\r?\n/;

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

/** Reads the data payload of one SSE event (lines starting with "data:"), or undefined. */
function eventData(event: string): string | undefined {
  let data: string | undefined;
  for (const line of event.split(/\r?\n/)) {
    if (line.startsWith('data:')) {
      const v = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
      data = data === undefined ? v : `${data}\n${v}`;
    }
  }
  return data;
}

type Choice = { delta?: { content?: unknown }; text?: unknown };
type TypedEvent = { type: string; sequence_number?: unknown; delta?: unknown; response?: { id?: unknown; usage?: unknown } };

/** A Responses API event: its text delta, its final usage, its sequence number. */
function inspectTypedEvent(e: TypedEvent, acc: RelayResult): 'forward' {
  if (typeof e.sequence_number === 'number') acc.sequence = e.sequence_number;
  switch (e.type) {
    case 'response.output_text.delta':
      if (typeof e.delta === 'string') acc.outputText += e.delta;
      break;
    case 'response.created':
      if (typeof e.response?.id === 'string') acc.responseId = e.response.id;
      break;
    case 'response.completed':
    case 'response.incomplete':
    case 'response.failed': {
      const usage = responsesUsage(e.response?.usage);
      if (usage) acc.usage = usage;
      acc.sawDone = true;
      break;
    }
  }
  return 'forward';
}

/** Inspects one event: whether to forward it, and what it tells about usage and output. */
export function inspectEvent(event: string, hideUsage: boolean, acc: RelayResult): 'forward' | 'drop' | 'invalid' {
  const data = eventData(event);
  if (data === undefined) return 'forward'; // comment or keep-alive
  if (data === '[DONE]') {
    acc.sawDone = true;
    return 'forward';
  }
  let chunk: { usage?: Usage | null; choices?: Choice[]; model?: unknown; type?: unknown };
  try {
    chunk = JSON.parse(data);
  } catch {
    return 'invalid';
  }
  if (!chunk || typeof chunk !== 'object') return 'invalid';
  if (acc.model === undefined && typeof chunk.model === 'string') acc.model = chunk.model;
  if (typeof chunk.type === 'string') return inspectTypedEvent(chunk as TypedEvent, acc);
  const choices = Array.isArray(chunk.choices) ? chunk.choices : [];
  for (const choice of choices) {
    const text = choice?.delta?.content ?? choice?.text;
    if (typeof text === 'string') acc.outputText += text;
  }
  if (chunk.usage && typeof chunk.usage.prompt_tokens === 'number') {
    acc.usage = chatUsage(chunk.usage);
    if (hideUsage && choices.length === 0) return 'drop';
  }
  return 'forward';
}

/** The response id in a Responses API stream's first event (response.created), when the first bytes hold it. */
export function firstResponseId(first: Buffer): string | undefined {
  const text = first.toString('utf8');
  const m = EVENT_END.exec(text);
  const acc: RelayResult = { outputText: '', sawDone: false, clientGone: false };
  inspectEvent(m ? text.slice(0, m.index) : text, false, acc);
  return acc.responseId;
}

/**
 * @param typedEvents the stream is a Responses API stream: a cut ends with its `error` event.
 * @param rewrite applied to the text of each write (the requested model name for a mapped one); undefined costs nothing.
 */
export async function relaySse(handle: StreamHandle, res: ServerResponse, hideUsage: boolean, typedEvents = false, rewrite?: (text: string) => string): Promise<RelayResult> {
  const acc: RelayResult = { outputText: '', sawDone: false, clientGone: false };
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let clientClosed = false;
  const onClose = () => {
    if (!res.writableFinished) {
      clientClosed = true;
      handle.abort();
    }
  };
  res.on('close', onClose);
  if (res.destroyed) onClose(); // the client left before the relay began (e.g. while a stored response was recorded)

  /** Splits complete events out of `pending` and writes the ones to forward; false on invalid data. */
  const pump = async (text: string): Promise<boolean> => {
    pending += text;
    let out = '';
    let valid = true;
    for (let m = EVENT_END.exec(pending); m; m = EVENT_END.exec(pending)) {
      const end = m.index + m[0].length;
      const event = pending.slice(0, end);
      pending = pending.slice(end);
      const verdict = inspectEvent(event.slice(0, m.index), hideUsage, acc);
      if (verdict === 'invalid') {
        valid = false;
        break;
      }
      if (verdict === 'forward') out += event;
    }
    if (out && rewrite) out = rewrite(out);
    if (out && !clientClosed && !res.write(out)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    return valid;
  };

  try {
    let ok = await pump(decoder.write(handle.first));
    while (ok && !clientClosed) {
      const next = await handle.rest.next();
      if (next.done) break;
      ok = await pump(decoder.write(next.value));
    }
    if (!ok) {
      acc.interrupted = 'invalid';
      handle.abort();
    } else if (!clientClosed) {
      const tail = pending + decoder.end();
      if (tail.trim() && inspectEvent(tail, hideUsage, acc) === 'forward') res.write(rewrite ? rewrite(tail) : tail);
    }
  } catch {
    if (!clientClosed) acc.interrupted = 'cut';
  } finally {
    handle.done();
    res.off('close', onClose);
  }
  acc.clientGone = clientClosed;
  if (acc.interrupted && !clientClosed && !res.writableEnded) {
    const [message, code] =
      acc.interrupted === 'cut'
        ? ['The provider stream was interrupted after it started; the response is incomplete.', 'stream_interrupted']
        : ['The provider sent an invalid stream event; the response is incomplete.', 'invalid_upstream_stream'];
    res.write(typedEvents ? typedErrorEvent(message, code, (acc.sequence ?? -1) + 1) : sseErrorEvent(message, code));
  }
  if (!res.writableEnded) res.end();
  return acc;
}
