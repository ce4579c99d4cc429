/**
 * Anthropic Messages answers -> OpenAI chat: a `message` to a chat.completion, and the
 * stream's events (message_start, content_block_start/delta/stop, message_delta,
 * message_stop, ping, error) to chat.completion.chunk events, event by event.
 * `thinking` blocks are not carried (OpenAI chat has no place for them).
 */
import type { Usage } from '../core/endpoints';
import { eventData } from '../core/sse';
import { cacheAwareUsage, chatUsageObject } from './common';
import { StreamEventError, StreamTranslator } from './types';

type Json = Record<string, unknown>;
type AnthropicUsage = { input_tokens?: unknown; output_tokens?: unknown; cache_read_input_tokens?: unknown; cache_creation_input_tokens?: unknown };

const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** stop_reason -> finish_reason */
export function finishReason(stop: unknown): string | null {
  switch (stop) {
    case 'end_turn':
    case 'stop_sequence':
      return 'stop';
    case 'max_tokens':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    case null:
    case undefined:
      return null;
    default:
      return 'stop';
  }
}

/** Anthropic's usage (input_tokens exclude the prompt-cache reads and writes) as the gateway's. */
export function anthropicUsage(u: unknown): Usage | undefined {
  const x = u as AnthropicUsage | null | undefined;
  return x ? cacheAwareUsage(x.input_tokens, x.output_tokens, x.cache_read_input_tokens, x.cache_creation_input_tokens) : undefined;
}

/** A non-streaming Anthropic `message` as a chat.completion. */
export function chatCompletionOf(msg: Json, nowSec: number): Json {
  const blocks = Array.isArray(msg.content) ? (msg.content as Json[]) : [];
  const text = blocks
    .filter((b) => b?.type === 'text' && typeof b.text === 'string')
    .map((b) => b.text as string)
    .join('');
  const toolCalls = blocks.filter((b) => b?.type === 'tool_use').map((b) => ({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } }));
  const message: Json = { role: 'assistant', content: text || (toolCalls.length ? null : ''), refusal: null };
  if (toolCalls.length) message.tool_calls = toolCalls;
  const usage = anthropicUsage(msg.usage);
  const out: Json = {
    id: msg.id,
    object: 'chat.completion',
    created: nowSec,
    model: msg.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason(msg.stop_reason) ?? 'stop' }],
  };
  if (usage) out.usage = chatUsageObject(usage);
  return out;
}

/** Event type and JSON data of one SSE event. */
function parseEvent(text: string): { name?: string; data?: Json } {
  const name = /^event:(.*)$/m.exec(text)?.[1].trim();
  const data = eventData(text);
  if (!data) return { name };
  try {
    return { name, data: JSON.parse(data) as Json };
  } catch {
    throw new StreamEventError('The provider sent an invalid stream event.', false);
  }
}

const RETRYABLE_STREAM_ERRORS = new Set(['overloaded_error', 'rate_limit_error', 'api_error', 'timeout_error']);

/** Translates one Anthropic stream into chat.completion.chunk events, keeping its state (id, tools, usage). */
export class AnthropicStreamTranslator implements StreamTranslator {
  private id = '';
  private model = '';
  private input: AnthropicUsage = {};
  private outputTokens = 0;
  private opened = false;
  /** content block index -> tool call index */
  private readonly tools = new Map<number, number>();

  constructor(private readonly nowSec: number) {}

  /**
   * One chunk, preceded by the opening one (role: assistant) the first time: nothing goes out
   * before the model produced something, so an error event before it can still fail over.
   */
  private chunk(delta: Json, finish: string | null = null): string {
    const c = { id: this.id, object: 'chat.completion.chunk', created: this.nowSec, model: this.model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
    const out = `data: ${JSON.stringify(c)}\n\n`;
    if (this.opened) return out;
    this.opened = true;
    return this.chunk({ role: 'assistant', content: '' }) + out;
  }

  event(text: string): string {
    const { name, data } = parseEvent(text);
    const type = (data?.type as string | undefined) ?? name;
    if (!data) return '';
    switch (type) {
      case 'message_start': {
        const m = (data.message ?? {}) as Json;
        this.id = String(m.id ?? '');
        this.model = String(m.model ?? '');
        this.input = (m.usage ?? {}) as AnthropicUsage;
        this.outputTokens = n(this.input.output_tokens);
        return ''; // the role chunk waits for the first content (see chunk)
      }
      case 'content_block_start':
        return this.blockStart(n(data.index), (data.content_block ?? {}) as Json);
      case 'content_block_delta':
        return this.blockDelta(n(data.index), (data.delta ?? {}) as Json);
      case 'message_delta': {
        const usage = data.usage as AnthropicUsage | undefined;
        if (usage && typeof usage.output_tokens === 'number') this.outputTokens = usage.output_tokens;
        const stop = finishReason((data.delta as Json | undefined)?.stop_reason);
        return stop ? this.chunk({}, stop) : '';
      }
      case 'message_stop':
        return this.finish();
      case 'error': {
        const e = (data.error ?? {}) as Json;
        throw new StreamEventError(`The provider reported an error in the stream (${String(e.type ?? 'error')}).`, RETRYABLE_STREAM_ERRORS.has(String(e.type)));
      }
      default:
        return ''; // ping, content_block_stop, and event types added later
    }
  }

  private blockStart(index: number, block: Json): string {
    if (block.type === 'text' && typeof block.text === 'string' && block.text) return this.chunk({ content: block.text });
    if (block.type !== 'tool_use') return '';
    const k = this.tools.size;
    this.tools.set(index, k);
    return this.chunk({ tool_calls: [{ index: k, id: block.id, type: 'function', function: { name: block.name, arguments: '' } }] });
  }

  private blockDelta(index: number, delta: Json): string {
    if (delta.type === 'text_delta' && typeof delta.text === 'string') return this.chunk({ content: delta.text });
    if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string') {
      const k = this.tools.get(index);
      if (k === undefined || !delta.partial_json) return '';
      return this.chunk({ tool_calls: [{ index: k, function: { arguments: delta.partial_json } }] });
    }
    return ''; // thinking_delta, signature_delta, citations_delta: not carried
  }

  /** The usage chunk (choices: []) as OpenAI sends it for include_usage, then [DONE]. */
  private finish(): string {
    const usage = anthropicUsage({ ...this.input, output_tokens: this.outputTokens }) ?? { prompt_tokens: 0, completion_tokens: this.outputTokens };
    const c = { id: this.id, object: 'chat.completion.chunk', created: this.nowSec, model: this.model, choices: [], usage: chatUsageObject(usage) };
    return `data: ${JSON.stringify(c)}\n\ndata: [DONE]\n\n`;
  }
}
