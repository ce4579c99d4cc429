/** Runs an upstream SSE byte stream through a StreamTranslator, event by event, as OpenAI SSE bytes. */
import { StringDecoder } from 'node:string_decoder';
import { MAX_EVENT_CHARS, SseSplitter } from '../core/sse';
import { StreamEventError, type StreamTranslator } from './types';

/** One stream's translation, chunk by chunk, synchronously: what each chunk's complete events translate to. */
export class SseTranslation {
  private readonly decoder = new StringDecoder('utf8');
  private readonly splitter = new SseSplitter();

  constructor(private readonly translator: StreamTranslator) {}

  /** One event over MAX_EVENT_CHARS arrived: the stream cannot go on. */
  get overflow(): boolean {
    return this.splitter.overflow;
  }

  /** The translation of the events `bytes` completes ('' for none). */
  push(bytes: Buffer): string {
    return this.events(this.decoder.write(bytes));
  }

  /** The translation of what the stream ended with (its last event, if it was not terminated). */
  end(): string {
    let out = this.events(this.decoder.end());
    const tail = this.splitter.rest();
    if (tail.trim()) out += this.translator.event(tail);
    return out;
  }

  private events(text: string): string {
    let out = '';
    for (const e of this.splitter.push(text)) out += this.translator.event(e.body);
    return out;
  }
}

export const overflowError = () => new StreamEventError(`The provider sent a stream event larger than the gateway relays (${MAX_EVENT_CHARS} bytes).`, false);

/** Yields each non-empty translation as soon as its upstream event is complete; a translator's error ends the stream with it. */
export async function* translateSse(source: AsyncIterator<Buffer>, translator: StreamTranslator): AsyncGenerator<Buffer, void, undefined> {
  const translation = new SseTranslation(translator);
  try {
    for (;;) {
      const next = await source.next();
      const out = next.done ? translation.end() : translation.push(next.value);
      if (out) yield Buffer.from(out, 'utf8');
      // One event over the cap is a stream fault: the executor fails over before the first byte, else the stream ends with its error event.
      if (translation.overflow) throw overflowError();
      if (next.done) return;
    }
  } finally {
    await source.return?.();
  }
}
