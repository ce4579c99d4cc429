/**
 * Relays an upstream SSE stream to the client through a StreamTranslator (another wire
 * format's events, or the same events observed), each translated event written as soon as
 * its upstream event is complete, with backpressure. A failure after the first byte ends
 * the stream with the wire format's error event.
 */
import type { ServerResponse } from 'node:http';
import { SseTranslation } from '../providers/sse-translate';
import type { StreamTranslator } from '../providers/types';
import type { StreamHandle } from './executor';
import { relayChunks, writeOut } from './relay-loop';

export interface EventRelayResult {
  interrupted?: 'cut';
  clientGone: boolean;
}

/**
 * `rewrite` is applied to the text of each write (the requested model name for a mapped one).
 * `hold`: on a cut, return without the error event and without ending the response (the caller may continue the stream).
 */
export async function relayEvents(
  handle: StreamHandle,
  res: ServerResponse,
  translator: StreamTranslator & { complete?: boolean },
  errorEvent: (message: string) => string,
  rewrite?: (text: string) => string,
  hold = false,
): Promise<EventRelayResult> {
  let interrupted: 'cut' | undefined;
  const translation = new SseTranslation(translator);
  const sink = {
    gone: false,
    get stopped() {
      return translation.overflow; // one event over the cap: the stream ends with its error event
    },
    take: (bytes: Buffer) => {
      const out = translation.push(bytes);
      return out && rewrite ? rewrite(out) : out;
    },
  };
  const onClose = () => {
    if (!res.writableFinished) {
      sink.gone = true;
      handle.abort();
    }
  };
  res.on('close', onClose);
  if (res.destroyed) onClose();
  try {
    await writeOut(res, sink, sink.take(handle.first));
    const ok = !sink.stopped && (sink.gone || (await relayChunks(handle.rest, res, sink, () => handle.abort())));
    if (!ok && !sink.gone) interrupted = 'cut';
    else if (!sink.gone) {
      const tail = translation.end();
      await writeOut(res, sink, tail && rewrite ? rewrite(tail) : tail);
      // A stream that closed before its end (a translator that knows it says so) was cut short.
      if (translator.complete === false) interrupted = 'cut';
    }
  } catch {
    if (!sink.gone) interrupted = 'cut';
  } finally {
    handle.done();
    res.off('close', onClose);
  }
  const clientGone = sink.gone;
  if (interrupted && hold) return { interrupted, clientGone };
  if (interrupted && !res.writableEnded) res.write(errorEvent('The provider stream was interrupted after it started; the response is incomplete.'));
  if (!res.writableEnded) res.end();
  return { interrupted, clientGone };
}
