/**
 * Relays an upstream SSE stream to the client event by event: each complete event is
 * written as soon as it arrives (no buffering beyond the event boundary), with
 * backpressure, while usage and output text are picked up for accounting. The usage-only
 * chunk the gateway asked for (stream_options.include_usage) is hidden from clients that
 * did not ask for it themselves.
 */
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import type { Usage } from '../tenancy/contracts';
import type { StreamHandle } from './executor';

export interface RelayResult {
  usage?: Usage;
  /** The model the provider says answered (the first chunk's `model`). */
  model?: string;
  /** Text the model produced, for token estimation when no usage came. */
  outputText: string;
  sawDone: boolean;
  /** The upstream failed after the first byte went to the client. */
  interrupted?: 'cut' | 'invalid';
  clientGone: boolean;
}

/** The blank line that ends an SSE event. */
export const EVENT_END = /\r?\n\r?\n/;

export function sseErrorEvent(message: string, code: string): string {
  return `data: ${JSON.stringify({ error: { message, type: 'upstream_error', code, param: null } })}\n\n`;
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

/** Inspects one event: whether to forward it, and what it tells about usage and output. */
export function inspectEvent(event: string, hideUsage: boolean, acc: RelayResult): 'forward' | 'drop' | 'invalid' {
  const data = eventData(event);
  if (data === undefined) return 'forward'; // comment or keep-alive
  if (data === '[DONE]') {
    acc.sawDone = true;
    return 'forward';
  }
  let chunk: { usage?: Usage | null; choices?: Choice[]; model?: unknown };
  try {
    chunk = JSON.parse(data);
  } catch {
    return 'invalid';
  }
  if (!chunk || typeof chunk !== 'object') return 'invalid';
  if (acc.model === undefined && typeof chunk.model === 'string') acc.model = chunk.model;
  const choices = Array.isArray(chunk.choices) ? chunk.choices : [];
  for (const choice of choices) {
    const text = choice?.delta?.content ?? choice?.text;
    if (typeof text === 'string') acc.outputText += text;
  }
  if (chunk.usage && typeof chunk.usage.prompt_tokens === 'number') {
    acc.usage = { prompt_tokens: chunk.usage.prompt_tokens, completion_tokens: Number(chunk.usage.completion_tokens) || 0 };
    if (hideUsage && choices.length === 0) return 'drop';
  }
  return 'forward';
}

export async function relaySse(handle: StreamHandle, res: ServerResponse, hideUsage: boolean): Promise<RelayResult> {
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
    if (out && !res.write(out)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
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
      if (tail.trim() && inspectEvent(tail, hideUsage, acc) === 'forward') res.write(tail);
    }
  } catch {
    if (!clientClosed) acc.interrupted = 'cut';
  } finally {
    handle.done();
    res.off('close', onClose);
  }
  acc.clientGone = clientClosed;
  if (acc.interrupted && !clientClosed && !res.writableEnded) {
    res.write(
      acc.interrupted === 'cut'
        ? sseErrorEvent('The provider stream was interrupted after it started; the response is incomplete.', 'stream_interrupted')
        : sseErrorEvent('The provider sent an invalid stream event; the response is incomplete.', 'invalid_upstream_stream'),
    );
  }
  if (!res.writableEnded) res.end();
  return acc;
}
