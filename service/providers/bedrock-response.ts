/**
 * Bedrock Converse answers -> OpenAI chat: the Converse output to a chat.completion, and the
 * ConverseStream (AWS event-stream binary frames: messageStart, contentBlockStart,
 * contentBlockDelta, contentBlockStop, messageStop, metadata, or an exception) to
 * chat.completion.chunk events, frame by frame.
 */
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import type { Usage } from '../core/endpoints';
import { cacheAwareUsage, chatUsageObject } from './common';
import { StreamEventError } from './types';

type Json = Record<string, any>;

const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

const FINISH: Record<string, string> = { end_turn: 'stop', stop_sequence: 'stop', max_tokens: 'length', tool_use: 'tool_calls', guardrail_intervened: 'content_filter', content_filtered: 'content_filter' };

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
  const out: Json = { id: `chatcmpl-bedrock-${nowSec}`, object: 'chat.completion', created: nowSec, model, choices: [{ index: 0, message, logprobs: null, finish_reason: FINISH[parsed.stopReason] ?? 'stop' }] };
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
    const c = { id: `chatcmpl-bedrock-${this.nowSec}`, object: 'chat.completion.chunk', created: this.nowSec, model: this.model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
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

const codec = new EventStreamCodec(toUtf8, fromUtf8);

/** Splits event-stream frames (4-byte big-endian total length first), decodes and translates each. */
export async function* translateEventStream(source: AsyncIterator<Buffer>, t: ConverseStreamTranslator): AsyncGenerator<Buffer, void, undefined> {
  let buf: Buffer = Buffer.alloc(0);
  try {
    for (let next = await source.next(); !next.done; next = await source.next()) {
      buf = buf.length ? Buffer.concat([buf, next.value]) : next.value;
      let out = '';
      while (buf.length >= 4 && buf.length >= buf.readUInt32BE(0)) {
        const total = buf.readUInt32BE(0);
        let msg;
        try {
          msg = codec.decode(buf.subarray(0, total));
        } catch {
          throw new StreamEventError('The provider sent an invalid event-stream frame.', false);
        }
        buf = buf.subarray(total);
        const kind = String(msg.headers[':message-type']?.value ?? '');
        if (kind === 'exception' || kind === 'error') {
          const type = String(msg.headers[':exception-type']?.value ?? msg.headers[':error-code']?.value ?? 'error');
          throw new StreamEventError(`The provider reported an error in the stream (${type}).`, RETRYABLE.has(type));
        }
        out += t.event(String(msg.headers[':event-type']?.value ?? ''), JSON.parse(toUtf8(msg.body) || '{}') as Json);
      }
      if (out) yield Buffer.from(out, 'utf8');
    }
  } finally {
    await source.return?.();
  }
}
