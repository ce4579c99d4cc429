/**
 * SSE parsing shared by the executor (first-event check) and the stream relay: the event
 * boundary, an event's data payload, and what one OpenAI-shaped event says (usage, model,
 * output text, end of stream, Responses API sequence and id). No I/O.
 */
import { chatUsage, responsesUsage, Usage } from './endpoints';

/** The blank line that ends an SSE event. */
export const EVENT_END = /\r?\n\r?\n/;

/** Unreadable events in a row after which a stream counts as broken (fewer are skipped and counted). */
export const MAX_INVALID_RUN = 3;
/**
 * Largest SSE event the gateway holds (4 MiB of text, its terminator included): no provider
 * event comes close (a chunk carries a few tokens; a Responses API `response.completed`
 * repeats the whole output, far below this). Over it, the attempt ends: before the first byte
 * reached the client, the executor fails over; after, the stream ends with its error event.
 */
export const MAX_EVENT_CHARS = 4 * 1024 * 1024;

/** An upstream event (or event-stream frame) over its documented cap. */
export class EventTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`The provider sent a stream event larger than ${limit} bytes.`);
    this.name = 'EventTooLargeError';
  }
}

/** One complete event: its text without the terminating blank line, and with it (as relayed). */
export interface SplitEvent {
  body: string;
  raw: string;
}

/** The first complete terminator in `s` at or after `from`: where the event's text ends and where the next begins. */
export function findEventEnd(s: string, from = 0): { bodyEnd: number; end: number } | undefined {
  for (let i = s.indexOf('\n', from); i !== -1; i = s.indexOf('\n', i + 1)) {
    const next = s.charCodeAt(i + 1);
    const end = next === 10 ? i + 2 : next === 13 && s.charCodeAt(i + 2) === 10 ? i + 3 : -1;
    if (end !== -1) return { bodyEnd: i > from && s.charCodeAt(i - 1) === 13 ? i - 1 : i, end };
  }
  return undefined;
}

/**
 * Incremental SSE event splitter. An event still incomplete is kept as a list of pieces and
 * each push scans only the text it adds (plus the last two characters before it, where a
 * terminator may have begun), so an event of n bytes arriving in k pieces costs O(n), not
 * O(n * k) as re-running EVENT_END over the whole buffer did. Terminators are those of
 * EVENT_END ("\n\n", "\r\n\n", "\n\r\n", "\r\n\r\n"). Once an event (complete, or being
 * assembled) passes `maxChars`, `overflow` is set and nothing more is kept: the events
 * completed before it are still returned, the caller ends the stream after them.
 */
export class SseSplitter {
  private pieces: string[] = [];
  private length = 0;
  /** The last (up to) two characters of the pieces. */
  private tail = '';
  /** An event passed the cap: the stream cannot go on. */
  overflow = false;

  constructor(private readonly maxChars = MAX_EVENT_CHARS) {}

  /** Adds text; returns the events it completed, in order (none once `overflow` is set). */
  push(text: string): SplitEvent[] {
    const events: SplitEvent[] = [];
    if (!text || this.overflow) return events;
    let rest = text;
    if (this.length) {
      const hit = findEventEnd(this.tail + text);
      if (!hit) {
        this.append(text);
        return events;
      }
      const cut = hit.end - this.tail.length;
      const before = this.length - this.tail.length;
      const raw = this.pieces.join('') + text.slice(0, cut);
      this.clear();
      if (!this.keep(events, raw, before + hit.bodyEnd)) return events;
      rest = text.slice(cut);
    }
    let start = 0;
    for (let hit = findEventEnd(rest, start); hit; hit = findEventEnd(rest, start)) {
      if (!this.keep(events, rest.slice(start, hit.end), hit.bodyEnd - start)) return events;
      start = hit.end;
    }
    if (start < rest.length) this.append(start ? rest.slice(start) : rest);
    return events;
  }

  /** Nothing is kept: the next push begins an event. */
  get empty(): boolean {
    return this.length === 0;
  }

  /** What is left after the last complete event (an event the stream ended without terminating). */
  rest(): string {
    const rest = this.pieces.join('');
    this.clear();
    return rest;
  }

  /** Adds one complete event, unless it is over the cap (then sets `overflow`). */
  private keep(events: SplitEvent[], raw: string, bodyEnd: number): boolean {
    if (raw.length > this.maxChars) {
      this.overflow = true;
      return false;
    }
    // A "\r" before the terminator's first "\n" that was in an earlier push is not part of the text either.
    const end = bodyEnd > 0 && raw.charCodeAt(bodyEnd) === 10 && raw.charCodeAt(bodyEnd - 1) === 13 ? bodyEnd - 1 : bodyEnd;
    events.push({ body: raw.slice(0, end), raw });
    return true;
  }

  private append(text: string): void {
    if (this.length + text.length > this.maxChars) {
      this.overflow = true;
      this.clear();
      return;
    }
    this.pieces.push(text);
    this.length += text.length;
    this.tail = text.length >= 2 ? text.slice(-2) : (this.tail + text).slice(-2);
  }

  private clear(): void {
    this.pieces = [];
    this.length = 0;
    this.tail = '';
  }
}

/** Pieces a kept text takes on before it is copied into one flat string again. */
export const FLATTEN_EVERY = 32;

/** Something that keeps a stream's text: `outputPieces` counts what was appended since the last copy. */
export interface KeptText {
  outputText: string;
  outputPieces?: number;
}

/**
 * Appends one streamed text delta to `kept.outputText`, kept for the stream's life (billing a cut
 * stream, continuing it elsewhere). V8 joins `a += b` as a rope: a 32-byte node per piece that
 * keeps the piece itself, so a 4-character token costs ~31 bytes, not 4: 31 KB a stream at 1,000
 * events against 4 KB kept flat (`npm run bench -- --stream-text`). Every FLATTEN_EVERY pieces the
 * rope is copied into one flat string, which copies a 1,000-event text ~30 times in all.
 */
export function appendOutput(kept: KeptText, piece: string): void {
  kept.outputText += piece;
  kept.outputPieces = (kept.outputPieces ?? 0) + 1;
  if (kept.outputPieces < FLATTEN_EVERY) return;
  kept.outputPieces = 0;
  kept.outputText = flatCopy(kept.outputText);
}

/**
 * One flat string with the same text. A substring of a rope is cut from its flattened copy in
 * every V8 this project runs on; flattening in place (`s.charCodeAt(0)`, `Number(s)`) is skipped
 * by Node 24's optimised code.
 */
export const flatCopy = (s: string): string => ` ${s}`.slice(1);

/** What the events of one stream said so far (filled in by inspectEvent). */
export interface EventSummary extends KeptText {
  usage?: Usage;
  /** The model the provider says answered (the first chunk's `model`). */
  model?: string;
  /** Text the model produced, for token estimation when no usage came. */
  outputText: string;
  sawDone: boolean;
  /** Responses API streams: the last event's sequence_number (the gateway's error event follows it). */
  sequence?: number;
  /** Responses API streams: the response id from response.created (for the object's owner record). */
  responseId?: string;
  /** Responses API streams: the id of the output message item the text goes to (output_item.added). */
  itemId?: string;
  /** The stream carried tool calls (chat delta.tool_calls, Responses function_call items): not continued elsewhere. */
  toolCalls?: boolean;
  /** A choice finished (finish_reason): the answer is whole even if [DONE] never comes. */
  finished?: boolean;
  /** Unreadable events skipped. */
  dropped?: number;
  /** Responses API streams: ids of the output items (response.output_item.done), recorded with the response's owner. */
  itemIds?: string[];
}

/** Reads the data payload of one SSE event (lines starting with "data:"), or undefined. */
export function eventData(event: string): string | undefined {
  let data: string | undefined;
  for (const line of event.split(/\r?\n/)) {
    if (line.startsWith('data:')) {
      const v = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
      data = data === undefined ? v : `${data}\n${v}`;
    }
  }
  return data;
}

type Choice = { delta?: { content?: unknown; tool_calls?: unknown }; text?: unknown; finish_reason?: unknown };
type TypedEvent = { type: string; sequence_number?: unknown; delta?: unknown; response?: { id?: unknown; usage?: unknown }; item?: { id?: unknown; type?: unknown } };

/** A Responses API event: its text delta, its final usage, its sequence number. */
function inspectTypedEvent(e: TypedEvent, acc: EventSummary): 'forward' {
  if (typeof e.sequence_number === 'number') acc.sequence = e.sequence_number;
  switch (e.type) {
    case 'response.output_text.delta':
      if (typeof e.delta === 'string') appendOutput(acc, e.delta);
      break;
    case 'response.created':
      if (typeof e.response?.id === 'string') acc.responseId = e.response.id;
      break;
    case 'response.output_item.added':
      if (e.item?.type === 'message' && typeof e.item.id === 'string') acc.itemId ??= e.item.id;
      else if (e.item?.type === 'function_call') acc.toolCalls = true;
      break;
    case 'response.output_item.done':
      if (typeof e.item?.id === 'string' && (acc.itemIds ??= []).length < 1000) acc.itemIds.push(e.item.id);
      break;
    case 'response.completed':
    case 'response.incomplete':
    case 'response.failed': {
      const usage = responsesUsage(e.response?.usage);
      if (usage) acc.usage = usage;
      acc.sawDone = true;
      break;
    }
  }
  return 'forward';
}

/** Inspects one event: whether to forward it, and what it tells about usage and output. */
export function inspectEvent(event: string, hideUsage: boolean, acc: EventSummary): 'forward' | 'drop' | 'invalid' {
  const data = eventData(event);
  if (data === undefined) return 'forward'; // comment or keep-alive
  if (data === '[DONE]') {
    acc.sawDone = true;
    return 'forward';
  }
  let chunk: { usage?: Usage | null; choices?: Choice[]; model?: unknown; type?: unknown };
  try {
    chunk = JSON.parse(data);
  } catch {
    return 'invalid';
  }
  if (!chunk || typeof chunk !== 'object') return 'invalid';
  if (acc.model === undefined && typeof chunk.model === 'string') acc.model = chunk.model;
  if (typeof chunk.type === 'string') return inspectTypedEvent(chunk as TypedEvent, acc);
  const choices = Array.isArray(chunk.choices) ? chunk.choices : [];
  for (const choice of choices) {
    const text = choice?.delta?.content ?? choice?.text;
    if (typeof text === 'string') appendOutput(acc, text);
    if (choice?.delta?.tool_calls) acc.toolCalls = true;
    if (typeof choice?.finish_reason === 'string') acc.finished = true;
  }
  if (chunk.usage && typeof chunk.usage.prompt_tokens === 'number') {
    acc.usage = chatUsage(chunk.usage);
    if (hideUsage && choices.length === 0) return 'drop';
  }
  return 'forward';
}

/** The response id in a Responses API stream's first event (response.created), when the first bytes hold it. */
export function firstResponseId(first: Buffer): string | undefined {
  const text = first.toString('utf8');
  const m = EVENT_END.exec(text);
  const acc: EventSummary = { outputText: '', sawDone: false };
  inspectEvent(m ? text.slice(0, m.index) : text, false, acc);
  return acc.responseId;
}
