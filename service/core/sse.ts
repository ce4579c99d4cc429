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

/** What the events of one stream said so far (filled in by inspectEvent). */
export interface EventSummary {
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
      if (typeof e.delta === 'string') acc.outputText += e.delta;
      break;
    case 'response.created':
      if (typeof e.response?.id === 'string') acc.responseId = e.response.id;
      break;
    case 'response.output_item.added':
      if (e.item?.type === 'message' && typeof e.item.id === 'string') acc.itemId ??= e.item.id;
      else if (e.item?.type === 'function_call') acc.toolCalls = true;
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
    if (typeof text === 'string') acc.outputText += text;
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
