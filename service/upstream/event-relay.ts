/**
 * Relays an upstream SSE stream to the client through a StreamTranslator (another wire
 * format's events, or the same events observed), each translated event written as soon as
 * its upstream event is complete, with backpressure. A failure after the first byte ends
 * the stream with the wire format's error event.
 */
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { translateSse } from '../providers/sse-translate';
import type { StreamTranslator } from '../providers/types';
import type { StreamHandle } from './executor';

export interface EventRelayResult {
  interrupted?: 'cut';
  clientGone: boolean;
}

/** The handle's first bytes, then the rest. */
async function* bytesOf(handle: StreamHandle): AsyncGenerator<Buffer, void, undefined> {
  yield handle.first;
  try {
    for (;;) {
      const next = await handle.rest.next();
      if (next.done) return;
      yield next.value;
    }
  } finally {
    await handle.rest.return?.();
  }
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
  let clientGone = false;
  let interrupted: 'cut' | undefined;
  const onClose = () => {
    if (!res.writableFinished) {
      clientGone = true;
      handle.abort();
    }
  };
  res.on('close', onClose);
  if (res.destroyed) onClose();
  try {
    for await (const chunk of translateSse(bytesOf(handle), translator)) {
      if (clientGone) break;
      if (!res.write(rewrite ? rewrite(chunk.toString('utf8')) : chunk)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    }
    // A stream that closed before its end (a translator that knows it says so) was cut short.
    if (!clientGone && translator.complete === false) interrupted = 'cut';
  } catch {
    if (!clientGone) interrupted = 'cut';
  } finally {
    handle.done();
    res.off('close', onClose);
  }
  if (interrupted && hold) return { interrupted, clientGone };
  if (interrupted && !res.writableEnded) res.write(errorEvent('The provider stream was interrupted after it started; the response is incomplete.'));
  if (!res.writableEnded) res.end();
  return { interrupted, clientGone };
}
