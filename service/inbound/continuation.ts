/**
 * Continuing a stream that a provider cut, stalled or broke after content reached the client:
 * the request each inbound API sends to the next candidate (the text already sent as a
 * trailing assistant message, `prefill`, or inside a user message asking to continue exactly
 * after it, `instruction`), and which candidates may continue, by mode. Pure functions: the
 * pipeline sequences them and the splice translators (continuation-splice.ts) join the streams.
 */
import type { CONTINUATION_MODES } from '../config/schema';
import type { ProviderType } from '../core/provider-types';
import type { Candidate } from '../routing/catalog';
import type { ValidRequest } from './validate';

export type ContinuationMode = (typeof CONTINUATION_MODES)[number];

/**
 * Per provider type, when a model declares none: Anthropic's Messages API (and Claude on
 * Bedrock's Converse) continue a trailing assistant message; OpenAI chat treats one as a
 * finished turn, so it is asked to continue instead.
 */
const DEFAULT_MODE: Record<ProviderType, Exclude<ContinuationMode, 'none'>> = { anthropic: 'prefill', bedrock: 'prefill', openai: 'instruction', azure: 'instruction' };

export function continuationMode(c: Pick<Candidate, 'continuation' | 'provider'>): ContinuationMode {
  return c.continuation ?? DEFAULT_MODE[c.provider.type];
}

/** The user message of `instruction` mode. */
export function instructionText(partial: string): string {
  return `Your previous answer was cut off. This is what you had written so far, between the markers:\n<<<PARTIAL\n${partial}\nPARTIAL>>>\nContinue exactly where it stops: write only the rest of the answer, starting with the next character, without repeating any of it and without any preface.`;
}

/** Whether a request's stream may be continued elsewhere at all (n > 1, a stored conversation, a background response: no). */
export function continuable(valid: ValidRequest): boolean {
  const b = valid.body;
  if (typeof b.n === 'number' && b.n > 1) return false;
  if (b.previous_response_id !== undefined && b.previous_response_id !== null) return false;
  if (b.conversation !== undefined && b.conversation !== null) return false;
  return b.background !== true;
}

/** The messages that continue `partial`: an assistant turn to extend (prefill) or a request to continue after it (instruction). */
function continuationTurns(partial: string, mode: Exclude<ContinuationMode, 'none'>): Array<Record<string, unknown>> {
  // Anthropic refuses a final assistant turn that ends in white space; the model goes on from the trimmed text.
  if (mode === 'prefill') return [{ role: 'assistant', content: partial.trimEnd() }];
  return [
    { role: 'assistant', content: partial },
    { role: 'user', content: instructionText(partial) },
  ];
}

/** Chat completions and Anthropic messages: the turns appended to `messages`. */
export function continueMessages(valid: ValidRequest, partial: string, mode: Exclude<ContinuationMode, 'none'>): ValidRequest {
  const messages = Array.isArray(valid.body.messages) ? (valid.body.messages as unknown[]) : [];
  return { ...valid, body: { ...valid.body, messages: [...messages, ...continuationTurns(partial, mode)] } };
}

/** Responses API: `input` as a list of messages with the turns appended. */
export function continueResponses(valid: ValidRequest, partial: string, mode: Exclude<ContinuationMode, 'none'>): ValidRequest {
  const input = valid.body.input;
  const items = typeof input === 'string' ? [{ role: 'user', content: input }] : Array.isArray(input) ? (input as unknown[]) : [];
  return { ...valid, body: { ...valid.body, input: [...items, ...continuationTurns(partial, mode)] } };
}
