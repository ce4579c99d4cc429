/** Runs an upstream SSE byte stream through a StreamTranslator, event by event, as OpenAI SSE bytes. */
import { StringDecoder } from 'node:string_decoder';
import { MAX_EVENT_CHARS, SseSplitter } from '../core/sse';
import { StreamEventError, type StreamTranslator } from './types';

/** Yields each non-empty translation as soon as its upstream event is complete; a translator's error ends the stream with it. */
export async function* translateSse(source: AsyncIterator<Buffer>, translator: StreamTranslator): AsyncGenerator<Buffer, void, undefined> {
  const decoder = new StringDecoder('utf8');
  const splitter = new SseSplitter();
  try {
    for (;;) {
      const next = await source.next();
      let out = '';
      for (const e of splitter.push(next.done ? decoder.end() : decoder.write(next.value))) out += translator.event(e.body);
      const tail = next.done ? splitter.rest() : '';
      if (tail.trim()) out += translator.event(tail);
      if (out) yield Buffer.from(out, 'utf8');
      // One event over the cap is a stream fault: the executor fails over before the first byte, else the stream ends with its error event.
      if (splitter.overflow) throw new StreamEventError(`The provider sent a stream event larger than the gateway relays (${MAX_EVENT_CHARS} bytes).`, false);
      if (next.done) return;
    }
  } finally {
    await source.return?.();
  }
}
