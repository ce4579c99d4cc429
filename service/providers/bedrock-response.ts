/**
 * Bedrock Converse answers -> OpenAI chat: the Converse output to a chat.completion, and the
 * ConverseStream (AWS event-stream binary frames: messageStart, contentBlockStart,
 * contentBlockDelta, contentBlockStop, messageStop, metadata, or an exception) to
 * chat.completion.chunk events, frame by frame.
 */
import type { Usage } from '../core/endpoints';
import { MAX_EVENT_CHARS } from '../core/sse';
import { awsModules } from './aws-modules';
import { cacheAwareUsage, chatUsageObject } from './common';
import { type ChunkTranslator, StreamEventError } from './types';

type Json = Record<string, any>;

const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

const FINISH: Record<string, string> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  tool_use: 'tool_calls',
  guardrail_intervened: 'content_filter',
  content_filtered: 'content_filter',
};

/** Converse usage (inputTokens exclude the prompt-cache reads and writes) as the gateway's. */
export function bedrockUsage(u: Json | undefined): Usage | undefined {
  return u ? cacheAwareUsage(u.inputTokens, u.outputTokens, u.cacheReadInputTokens, u.cacheWriteInputTokens) : undefined;
}

/** A Converse output as a chat.completion (Converse answers carry no id: the gateway's request id is not known here, so one is made from the clock). */
export function converseToChat(parsed: Json, nowSec: number, model: string): Json {
  const blocks: Json[] = parsed.output?.message?.content ?? [];
  const text = blocks.map((b) => (typeof b.text === 'string' ? b.text : '')).join('');
  const calls = blocks.filter((b) => b.toolUse).map((b) => ({ id: b.toolUse.toolUseId, type: 'function', function: { name: b.toolUse.name, arguments: JSON.stringify(b.toolUse.input ?? {}) } }));
  const message: Json = { role: 'assistant', content: text || (calls.length ? null : ''), refusal: null };
  if (calls.length) message.tool_calls = calls;
  const usage = bedrockUsage(parsed.usage);
  const out: Json = {
    id: `chatcmpl-bedrock-${nowSec}`,
    object: 'chat.completion',
    created: nowSec,
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: FINISH[parsed.stopReason] ?? 'stop' }],
  };
  if (usage) out.usage = chatUsageObject(usage);
  return out;
}

const RETRYABLE = new Set(['throttlingException', 'serviceUnavailableException', 'internalServerException', 'modelStreamErrorException']);

/** Translates one ConverseStream's decoded events into chat.completion.chunk SSE text. */
export class ConverseStreamTranslator {
  private opened = false;
  private readonly tools = new Map<number, number>();

  constructor(
    private readonly nowSec: number,
    private readonly model: string,
  ) {}

  private chunk(delta: Json, finish: string | null = null): string {
    const c = {
      id: `chatcmpl-bedrock-${this.nowSec}`,
      object: 'chat.completion.chunk',
      created: this.nowSec,
      model: this.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    };
    const out = `data: ${JSON.stringify(c)}\n\n`;
    if (this.opened) return out;
    this.opened = true;
    return this.chunk({ role: 'assistant', content: '' }) + out;
  }

  event(type: string, e: Json): string {
    switch (type) {
      case 'contentBlockStart': {
        const tool = e.start?.toolUse;
        if (!tool) return '';
        const k = this.tools.size;
        this.tools.set(n(e.contentBlockIndex), k);
        return this.chunk({ tool_calls: [{ index: k, id: tool.toolUseId, type: 'function', function: { name: tool.name, arguments: '' } }] });
      }
      case 'contentBlockDelta': {
        if (typeof e.delta?.text === 'string') return e.delta.text ? this.chunk({ content: e.delta.text }) : '';
        const k = this.tools.get(n(e.contentBlockIndex));
        if (typeof e.delta?.toolUse?.input === 'string' && k !== undefined) return this.chunk({ tool_calls: [{ index: k, function: { arguments: e.delta.toolUse.input } }] });
        return '';
      }
      case 'messageStop':
        return this.chunk({}, FINISH[e.stopReason] ?? 'stop');
      case 'metadata': {
        const usage = bedrockUsage(e.usage) ?? { prompt_tokens: 0, completion_tokens: 0 };
        const c = { id: `chatcmpl-bedrock-${this.nowSec}`, object: 'chat.completion.chunk', created: this.nowSec, model: this.model, choices: [], usage: chatUsageObject(usage) };
        return `data: ${JSON.stringify(c)}\n\ndata: [DONE]\n\n`;
      }
      default:
        return ''; // messageStart, contentBlockStop, reasoning deltas
    }
  }
}

/**
 * Largest event-stream frame the gateway decodes: the same cap as one SSE event (4 MiB). The
 * frame's first 4 bytes are its big-endian total length, the 16-byte overhead included
 * (https://docs.aws.amazon.com/lexv2/latest/dg/event-stream-encoding.html), so an oversized
 * frame is refused from its prelude, before its bytes are buffered.
 */
export const MAX_FRAME_BYTES = MAX_EVENT_CHARS;
const MIN_FRAME_BYTES = 16;

/**
 * Frames out of a byte stream: chunks are kept in a list and joined only once a whole frame is
 * in (a frame arriving in k pieces is copied once, not k times).
 */
export class FrameSplitter {
  private chunks: Buffer[] = [];
  private size = 0;
  /** A frame that cannot be decoded follows the frames already returned: thrown on the next push. */
  private failure?: StreamEventError;

  push(chunk: Buffer): Buffer[] {
    if (this.failure) throw this.failure;
    this.chunks.push(chunk);
    this.size += chunk.length;
    const frames: Buffer[] = [];
    for (let need = this.next(frames); need !== undefined && this.size >= need; need = this.next(frames)) {
      const buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size);
      frames.push(buf.subarray(0, need));
      const rest = buf.subarray(need);
      this.chunks = rest.length ? [rest] : [];
      this.size = rest.length;
    }
    return frames;
  }

  /** At the end of the stream: the deferred failure, if any. */
  end(): void {
    if (this.failure) throw this.failure;
  }

  /** The next frame's length; a bad prelude after frames already split out waits for the next push (they are translated first). */
  private next(frames: Buffer[]): number | undefined {
    try {
      return this.frameLength();
    } catch (err) {
      if (!frames.length || !(err instanceof StreamEventError)) throw err;
      this.failure = err;
      this.chunks = [];
      this.size = 0;
      return undefined;
    }
  }

  /** The next frame's total length once its prelude is in; throws on a length over MAX_FRAME_BYTES (or under the overhead). */
  private frameLength(): number | undefined {
    if (this.size < 4) return undefined;
    if (this.chunks[0].length < 4) this.chunks = [Buffer.concat(this.chunks, this.size)];
    const total = this.chunks[0].readUInt32BE(0);
    if (total > MAX_FRAME_BYTES) throw new StreamEventError(`The provider sent an event-stream frame larger than the gateway decodes (${total} > ${MAX_FRAME_BYTES} bytes).`, false);
    if (total < MIN_FRAME_BYTES) throw new StreamEventError('The provider sent an invalid event-stream frame.', false);
    return total;
  }
}

/** Splits event-stream frames (4-byte big-endian total length first), decodes and translates each. */
export class EventStreamTranslation implements ChunkTranslator {
  private readonly frames = new FrameSplitter();

  constructor(private readonly t: ConverseStreamTranslator) {}

  push(bytes: Buffer): string {
    let out = '';
    const { codec, toUtf8 } = awsModules();
    for (const frame of this.frames.push(bytes)) {
      let msg;
      try {
        msg = codec.decode(frame);
      } catch {
        throw new StreamEventError('The provider sent an invalid event-stream frame.', false);
      }
      const kind = String(msg.headers[':message-type']?.value ?? '');
      if (kind === 'exception' || kind === 'error') {
        const type = String(msg.headers[':exception-type']?.value ?? msg.headers[':error-code']?.value ?? 'error');
        throw new StreamEventError(`The provider reported an error in the stream (${type}).`, RETRYABLE.has(type));
      }
      out += this.t.event(String(msg.headers[':event-type']?.value ?? ''), JSON.parse(toUtf8(msg.body) || '{}') as Json);
    }
    return out;
  }

  end(): string {
    this.frames.end();
    return '';
  }
}
