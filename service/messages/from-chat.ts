/**
 * OpenAI chat answers -> Anthropic Messages answers, for Anthropic-shaped clients served by
 * OpenAI-type providers: a chat.completion to a `message`, and a chunk stream to Anthropic's
 * events (message_start, content_block_start/delta/stop, message_delta with stop_reason and
 * usage, message_stop), event by event. Also the observer of a native Anthropic stream.
 */
import { randomUUID } from 'node:crypto';
import { chatUsage, Usage } from '../core/endpoints';
import { appendOutput, eventData, MAX_INVALID_RUN } from '../core/sse';
import { anthropicUsage } from '../providers/anthropic-response';
import type { StreamTranslator } from '../providers/types';

type Json = Record<string, any>;

const STOP: Record<string, string> = { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use', function_call: 'tool_use', content_filter: 'refusal' };

/** Anthropic usage from the gateway's Usage: input_tokens exclude the cache reads. */
function messagesUsage(u: Usage | undefined): Json {
  const cached = u?.cached_tokens ?? 0;
  return { input_tokens: (u?.prompt_tokens ?? 0) - cached, output_tokens: u?.completion_tokens ?? 0, cache_read_input_tokens: cached, cache_creation_input_tokens: 0 };
}

const toolInput = (args: unknown): unknown => {
  try {
    return typeof args === 'string' && args ? JSON.parse(args) : {};
  } catch {
    return {};
  }
};

/** An Anthropic-style message id (`msg_…`) for a chat completion's id, stable for the same id. */
export function messageId(id: unknown): string {
  const s = typeof id === 'string' ? id : '';
  return s.startsWith('msg_') ? s : `msg_${s.replace(/^chatcmpl-/, '') || randomUUID().replace(/-/g, '')}`;
}

/** A chat.completion as an Anthropic `message`. */
export function chatToMessage(c: Json): Json {
  const choice = c.choices?.[0] ?? {};
  const content: Json[] = [];
  if (typeof choice.message?.content === 'string' && choice.message.content) content.push({ type: 'text', text: choice.message.content });
  for (const tc of choice.message?.tool_calls ?? []) content.push({ type: 'tool_use', id: tc.id, name: tc.function?.name, input: toolInput(tc.function?.arguments) });
  return {
    id: messageId(c.id),
    type: 'message',
    role: 'assistant',
    model: c.model,
    content,
    stop_reason: STOP[choice.finish_reason] ?? 'end_turn',
    stop_sequence: null,
    usage: messagesUsage(chatUsage(c.usage)),
  };
}

const sse = (type: string, data: Json) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

/** The JSON data of one SSE event, '[DONE]', or undefined (comment, keep-alive, not JSON). */
function dataOf(event: string): Json | '[DONE]' | undefined {
  const data = eventData(event);
  if (!data) return undefined;
  if (data === '[DONE]') return data;
  return JSON.parse(data) as Json;
}

/** Counts unreadable events: one is skipped (undefined), a run of MAX_INVALID_RUN throws (the stream is broken). */
class InvalidRun {
  dropped = 0;
  private run = 0;

  read(event: string): Json | '[DONE]' | undefined {
    try {
      const data = dataOf(event);
      this.run = 0;
      return data;
    } catch (err) {
      this.dropped++;
      if (++this.run >= MAX_INVALID_RUN) throw err;
      return undefined;
    }
  }
}

/** What a relay learns for accounting, and where the client's content blocks stand (for a continuation). */
export interface Observed {
  usage?: Usage;
  /** The usage is the provider's final count (a running count, like message_start's, is not). */
  usageFinal: boolean;
  model?: string;
  outputText: string;
  /** The index of the last content block started (-1 before any). */
  readonly blockIndex: number;
  /** The last block started is a text block still open. */
  readonly textOpen: boolean;
  /** A tool_use block was sent. */
  readonly toolCalls: boolean;
  /** The stream reached its end ([DONE], message_stop). */
  readonly complete: boolean;
  /** Unreadable events skipped. */
  readonly dropped: number;
}

/** chat.completion.chunk events -> Anthropic stream events. */
export class ChatToMessagesStream implements StreamTranslator, Observed {
  usage?: Usage;
  usageFinal = false;
  model?: string;
  outputText = '';
  outputPieces = 0;
  toolCalls = false;
  private readonly invalid = new InvalidRun();
  private started = false;
  private ended = false;

  get complete(): boolean {
    return this.ended;
  }

  get dropped(): number {
    return this.invalid.dropped;
  }
  private index = -1;
  private open: 'text' | 'tool' | undefined;
  private stop = 'end_turn';

  get blockIndex(): number {
    return this.index;
  }

  get textOpen(): boolean {
    return this.open === 'text';
  }

  event(text: string): string {
    const data = this.invalid.read(text);
    if (data === undefined || this.ended) return '';
    if (data === '[DONE]') return this.end();
    let out = this.start(data);
    if (data.usage) {
      this.usage = chatUsage(data.usage) ?? this.usage;
      this.usageFinal = this.usage !== undefined;
    }
    const choice = data.choices?.[0];
    const delta = choice?.delta ?? {};
    if (typeof delta.content === 'string' && delta.content) {
      appendOutput(this, delta.content);
      if (this.open !== 'text') out += this.openBlock('text', { type: 'text', text: '' });
      out += sse('content_block_delta', { index: this.index, delta: { type: 'text_delta', text: delta.content } });
    }
    for (const tc of delta.tool_calls ?? []) {
      this.toolCalls = true;
      if (tc.id) out += this.openBlock('tool', { type: 'tool_use', id: tc.id, name: tc.function?.name ?? '', input: {} });
      if (tc.function?.arguments) out += sse('content_block_delta', { index: this.index, delta: { type: 'input_json_delta', partial_json: tc.function.arguments } });
    }
    if (choice?.finish_reason) this.stop = STOP[choice.finish_reason] ?? 'end_turn';
    return out;
  }

  private start(data: Json): string {
    if (this.started) return '';
    this.started = true;
    this.model = typeof data.model === 'string' ? data.model : undefined;
    const message = { id: messageId(data.id), type: 'message', role: 'assistant', model: data.model, content: [], stop_reason: null, stop_sequence: null, usage: messagesUsage(undefined) };
    return sse('message_start', { message });
  }

  private closeBlock(): string {
    if (!this.open) return '';
    this.open = undefined;
    return sse('content_block_stop', { index: this.index });
  }

  private openBlock(kind: 'text' | 'tool', block: Json): string {
    const out = this.closeBlock();
    this.open = kind;
    this.index++;
    return out + sse('content_block_start', { index: this.index, content_block: block });
  }

  /** At [DONE]: the last block closes, then message_delta (stop_reason, usage) and message_stop. */
  private end(): string {
    this.ended = true;
    const out = this.closeBlock();
    return out + sse('message_delta', { delta: { stop_reason: this.stop, stop_sequence: null }, usage: messagesUsage(this.usage) }) + sse('message_stop', {});
  }
}

/** A native Anthropic stream, relayed as it is, read for usage and text. */
export class MessagesStreamObserver implements StreamTranslator, Observed {
  usage?: Usage;
  usageFinal = false;
  model?: string;
  outputText = '';
  outputPieces = 0;
  blockIndex = -1;
  textOpen = false;
  toolCalls = false;
  complete = false;
  private readonly invalid = new InvalidRun();
  private raw: Json = {};

  get dropped(): number {
    return this.invalid.dropped;
  }

  event(text: string): string {
    const before = this.invalid.dropped;
    const data = this.invalid.read(text);
    if (this.invalid.dropped > before) return ''; // an unreadable event is not relayed
    if (data && data !== '[DONE]') {
      if (data.type === 'message_stop') this.complete = true;
      if (data.type === 'message_start') {
        this.raw = { ...data.message?.usage };
        this.model = data.message?.model;
      } else if (data.type === 'message_delta' && data.usage) {
        // message_start's output_tokens is a running count (often 1); message_delta's is the final one.
        this.raw = { ...this.raw, ...data.usage };
        this.usageFinal = true;
      } else if (data.type === 'content_block_delta' && typeof data.delta?.text === 'string') appendOutput(this, data.delta.text);
      else if (data.type === 'content_block_start') {
        this.blockIndex = typeof data.index === 'number' ? data.index : this.blockIndex + 1;
        this.textOpen = data.content_block?.type === 'text';
        if (data.content_block?.type === 'tool_use') this.toolCalls = true;
      } else if (data.type === 'content_block_stop') this.textOpen = false;
      this.usage = anthropicUsage(this.raw) ?? this.usage;
    }
    return `${text}\n\n`;
  }
}
