/** Runs an upstream SSE byte stream through a StreamTranslator, event by event, as OpenAI SSE bytes. */
import { StringDecoder } from 'node:string_decoder';
import { EVENT_END } from '../core/sse';
import type { StreamTranslator } from './types';

/** Yields each non-empty translation as soon as its upstream event is complete; a translator's error ends the stream with it. */
export async function* translateSse(source: AsyncIterator<Buffer>, translator: StreamTranslator): AsyncGenerator<Buffer, void, undefined> {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  try {
    for (;;) {
      const next = await source.next();
      pending += next.done ? decoder.end() : decoder.write(next.value);
      let out = '';
      for (let m = EVENT_END.exec(pending); m; m = EVENT_END.exec(pending)) {
        out += translator.event(pending.slice(0, m.index));
        pending = pending.slice(m.index + m[0].length);
      }
      if (next.done && pending.trim()) out += translator.event(pending);
      if (out) yield Buffer.from(out, 'utf8');
      if (next.done) return;
    }
  } finally {
    await source.return?.();
  }
}
