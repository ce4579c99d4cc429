/**
 * Joining a continuation stream to the stream the client already has, so the client reads
 * one answer: its opening events dropped (the client has them), its text going on in the same
 * output item or content block, its sequence numbers and ids those of the stream it continues,
 * its closing events carrying the whole text. One translator per inbound API with typed events
 * (Responses API, Anthropic messages); chat chunks need none.
 */
import { responsesUsage, Usage } from '../core/endpoints';
import { appendOutput, eventData } from '../core/sse';
import type { Observed } from '../messages/from-chat';
import type { StreamTranslator } from '../providers/types';

type Json = Record<string, any>;

/** Where a Responses API stream stood when it broke. */
export interface ResponsesPrior {
  responseId?: string;
  itemId?: string;
  sequence?: number;
  /** Everything the client received so far. */
  sentText: string;
}

const OPENING = new Set(['response.created', 'response.in_progress', 'response.content_part.added']);

/** A continuation's Responses API events as more events of the stream it continues. */
export class ResponsesSplice implements StreamTranslator {
  outputText = '';
  outputPieces = 0;
  usage?: Usage;
  usageFinal = false;
  model?: string;
  toolCalls = false;
  /** The final event (completed, incomplete, failed) arrived. */
  complete = false;
  sequence: number;

  constructor(private readonly prior: ResponsesPrior) {
    this.sequence = prior.sequence ?? -1;
  }

  event(text: string): string {
    const data = eventData(text);
    if (!data) return `${text}\n\n`;
    const e = JSON.parse(data) as Json;
    if (OPENING.has(e.type) || (e.type === 'response.output_item.added' && e.item?.type === 'message')) return '';
    if (e.type === 'response.output_item.added' && e.item?.type === 'function_call') this.toolCalls = true;
    this.patch(e);
    e.sequence_number = ++this.sequence;
    return `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
  }

  private patch(e: Json): void {
    const whole = (t: unknown) => this.prior.sentText + (typeof t === 'string' ? t : '');
    if (typeof e.item_id === 'string' && this.prior.itemId) e.item_id = this.prior.itemId;
    switch (e.type) {
      case 'response.output_text.delta':
        if (typeof e.delta === 'string') appendOutput(this, e.delta);
        break;
      case 'response.output_text.done':
        e.text = whole(e.text);
        break;
      case 'response.content_part.done':
        if (e.part) e.part.text = whole(e.part.text);
        break;
      case 'response.output_item.done':
        this.patchItem(e.item);
        break;
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed':
        this.complete = true;
        this.usage = responsesUsage(e.response?.usage) ?? this.usage;
        this.usageFinal = this.usage !== undefined;
        if (typeof e.response?.model === 'string') this.model = e.response.model;
        if (this.prior.responseId && e.response) e.response.id = this.prior.responseId;
        for (const item of e.response?.output ?? []) this.patchItem(item);
        if (typeof e.response?.output_text === 'string') e.response.output_text = whole(e.response.output_text);
        break;
    }
  }

  /** The message item: the original id, its text the whole answer. */
  private patchItem(item: Json | undefined): void {
    if (item?.type !== 'message') return;
    if (this.prior.itemId) item.id = this.prior.itemId;
    for (const part of item.content ?? []) if (part?.type === 'output_text') part.text = this.prior.sentText + (part.text ?? '');
  }
}

/** Where an Anthropic messages stream stood when it broke: its last content block. */
export interface MessagesPrior {
  blockIndex: number;
  textOpen: boolean;
}

/**
 * A continuation's Anthropic events (from the provider, or translated from chat chunks by
 * `inner`) as more events of the message the client has: no second message_start, the first
 * text block continuing the open one, later blocks numbered after it.
 */
export class MessagesSplice implements StreamTranslator, Observed {
  private offset: number | undefined = undefined;
  private index: number;
  private open: boolean;

  constructor(
    private readonly inner: StreamTranslator & Observed,
    private readonly prior: MessagesPrior,
  ) {
    this.index = prior.blockIndex;
    this.open = prior.textOpen;
  }

  get usage(): Usage | undefined {
    return this.inner.usage;
  }
  get usageFinal(): boolean {
    return this.inner.usageFinal;
  }
  get model(): string | undefined {
    return this.inner.model;
  }
  get outputText(): string {
    return this.inner.outputText;
  }
  get toolCalls(): boolean {
    return this.inner.toolCalls;
  }
  get complete(): boolean {
    return this.inner.complete;
  }
  get dropped(): number {
    return this.inner.dropped;
  }
  get blockIndex(): number {
    return this.index;
  }
  get textOpen(): boolean {
    return this.open;
  }

  event(text: string): string {
    const out = this.inner.event(text);
    if (!out) return '';
    return out
      .split(/\n\n/)
      .filter((e) => e.trim())
      .map((e) => this.splice(e))
      .join('');
  }

  private splice(event: string): string {
    const data = eventData(event);
    if (!data) return `${event}\n\n`;
    const e = JSON.parse(data) as Json;
    if (e.type === 'message_start') return '';
    if (typeof e.index === 'number') {
      if (e.type === 'content_block_start' && this.offset === undefined) {
        const joins = this.prior.textOpen && e.content_block?.type === 'text';
        this.offset = (joins ? this.prior.blockIndex : this.prior.blockIndex + 1) - e.index;
        if (joins) return '';
      }
      e.index += this.offset ?? 0;
      if (e.type === 'content_block_start') {
        this.index = e.index;
        this.open = e.content_block?.type === 'text';
      } else if (e.type === 'content_block_stop') this.open = false;
    }
    return `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
  }
}
