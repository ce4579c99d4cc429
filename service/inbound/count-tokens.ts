/**
 * POST /v1/messages/count_tokens: the input tokens of an Anthropic Messages request, counted
 * with the gateway's tokenizer on the request as an OpenAI-type provider would get it. No
 * provider is called (Anthropic does not bill the count either), so nothing is admitted or
 * settled; the answer says it is an estimate (x-gateway-estimated: true).
 */
import { estimatePromptTokens } from '../cost/tokens';
import { messagesToChat } from '../messages/to-chat';
import { validateRequest } from './validate';

export interface TokenCount {
  model: string;
  input_tokens: number;
}

export function countMessageTokens(body: unknown): TokenCount {
  // Validated like a chat request (model and a non-empty messages array); max_tokens is not part of a count.
  const valid = validateRequest('chat', body);
  return { model: valid.model, input_tokens: estimatePromptTokens(messagesToChat(valid.body)) };
}
