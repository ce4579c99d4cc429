/** Runs an upstream SSE byte stream through a StreamTranslator, event by event, as OpenAI SSE text. */
import { StringDecoder } from 'node:string_decoder';
import { MAX_EVENT_CHARS, SseSplitter } from '../core/sse';
import { type ChunkTranslator, StreamEventError, type StreamTranslator } from './types';

/** One stream's translation, chunk by chunk, synchronously: what each chunk's complete events translate to. */
export class SseTranslation implements ChunkTranslator {
  private readonly decoder = new StringDecoder('utf8');
  private readonly splitter = new SseSplitter();

  constructor(private readonly translator: StreamTranslator) {}

  /** One event over MAX_EVENT_CHARS arrived: the stream cannot go on. */
  get overflow(): boolean {
    return this.splitter.overflow;
  }

  /** An event over the cap: the stream ends after the output already returned. */
  get failure(): Error | undefined {
    return this.splitter.overflow ? overflowError() : undefined;
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

const overflowError = () => new StreamEventError(`The provider sent a stream event larger than the gateway relays (${MAX_EVENT_CHARS} bytes).`, false);
