/**
 * The endpoint table: every routed endpoint the gateway inspects, and what differs between
 * them (paths, the field a request must carry, output caps, where usage and output text are
 * in an answer). The request path reads this table instead of branching per endpoint, so a
 * new endpoint is one entry here.
 */

/** Routed endpoints (the catalog, strategies, retries, limits and accounting apply to each). */
export type Endpoint = 'chat' | 'completion' | 'embedding' | 'responses';
export const ENDPOINT_NAMES = ['chat', 'completion', 'embedding', 'responses'] as const satisfies readonly Endpoint[];

/** What a model is for (providers[].models[].kind). */
export type ModelKind = 'chat' | 'completion' | 'embedding';

/**
 * Token usage of one answer, in the chat shape. `cached_tokens` is the part of the prompt the
 * provider served from its prompt cache (billed at the cached-input price when one is set);
 * `reasoning_tokens` is the part of the completion spent on reasoning (billed as output).
 */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens?: number;
  reasoning_tokens?: number;
}

export interface EndpointSpec {
  /** Public path on the gateway. */
  path: string;
  /** Path below an OpenAI-type provider's base URL (Azure: below the deployment, or /openai for responses); other provider types address it in their adapter. */
  upstreamPath: string;
  /** Field every request must carry, if any. */
  required?: string;
  /** Model kinds that serve this endpoint. */
  kinds: readonly ModelKind[];
  /** Whether `stream: true` is accepted. */
  streams: boolean;
  /** Streams carry usage only when asked with stream_options.include_usage (chat, completions). */
  streamUsageOption: boolean;
  /** Request fields capping the output, for cost-optimal routing. */
  maxTokenFields: readonly string[];
  /** Usage reported in a non-streaming answer. */
  usage(parsed: Record<string, unknown>): Usage | undefined;
  /** Text produced, for token estimation when no usage came. */
  outputText(parsed: Record<string, unknown>): string;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function usageOf(prompt: unknown, completion: unknown, cached: unknown, reasoning: unknown): Usage | undefined {
  if (typeof prompt !== 'number') return undefined;
  const usage: Usage = { prompt_tokens: prompt, completion_tokens: num(completion) ?? 0 };
  if (num(cached)) usage.cached_tokens = cached as number;
  if (num(reasoning)) usage.reasoning_tokens = reasoning as number;
  return usage;
}

type ChatUsage = { prompt_tokens?: unknown; completion_tokens?: unknown; prompt_tokens_details?: { cached_tokens?: unknown }; completion_tokens_details?: { reasoning_tokens?: unknown } };
type ResponsesUsage = { input_tokens?: unknown; output_tokens?: unknown; input_tokens_details?: { cached_tokens?: unknown }; output_tokens_details?: { reasoning_tokens?: unknown } };

/** Chat/completions/embeddings usage: prompt_tokens, completion_tokens and their details. */
export function chatUsage(u: unknown): Usage | undefined {
  const x = u as ChatUsage | null | undefined;
  return x ? usageOf(x.prompt_tokens, x.completion_tokens, x.prompt_tokens_details?.cached_tokens, x.completion_tokens_details?.reasoning_tokens) : undefined;
}

/** Responses API usage: input_tokens, output_tokens, input_tokens_details.cached_tokens, output_tokens_details.reasoning_tokens. */
export function responsesUsage(u: unknown): Usage | undefined {
  const x = u as ResponsesUsage | null | undefined;
  return x ? usageOf(x.input_tokens, x.output_tokens, x.input_tokens_details?.cached_tokens, x.output_tokens_details?.reasoning_tokens) : undefined;
}

function choicesText(parsed: Record<string, unknown>): string {
  const choices = Array.isArray(parsed.choices) ? (parsed.choices as Array<{ message?: { content?: unknown }; text?: unknown }>) : [];
  return choices.map((c) => (typeof c?.message?.content === 'string' ? c.message.content : typeof c?.text === 'string' ? c.text : '')).join('');
}

/** Text of a Response object's output messages (output[].content[] parts of type output_text). */
export function responseOutputText(parsed: Record<string, unknown>): string {
  if (typeof parsed.output_text === 'string') return parsed.output_text;
  const output = Array.isArray(parsed.output) ? (parsed.output as Array<{ content?: unknown }>) : [];
  let text = '';
  for (const item of output) {
    if (!Array.isArray(item?.content)) continue;
    for (const part of item.content as Array<{ type?: unknown; text?: unknown }>) if (part?.type === 'output_text' && typeof part.text === 'string') text += part.text;
  }
  return text;
}

const CHAT_LIKE = {
  streams: true,
  streamUsageOption: true,
  maxTokenFields: ['max_tokens', 'max_completion_tokens'],
  usage: (p: Record<string, unknown>) => chatUsage(p.usage),
  outputText: choicesText,
} as const;

export const ENDPOINTS: Readonly<Record<Endpoint, EndpointSpec>> = {
  chat: { ...CHAT_LIKE, path: '/v1/chat/completions', upstreamPath: '/chat/completions', required: 'messages', kinds: ['chat', 'completion'] },
  completion: { ...CHAT_LIKE, path: '/v1/completions', upstreamPath: '/completions', required: 'prompt', kinds: ['chat', 'completion'] },
  embedding: { ...CHAT_LIKE, streams: false, path: '/v1/embeddings', upstreamPath: '/embeddings', required: 'input', kinds: ['embedding'], maxTokenFields: [] },
  responses: {
    path: '/v1/responses',
    upstreamPath: '/responses',
    kinds: ['chat', 'completion'],
    streams: true,
    streamUsageOption: false,
    maxTokenFields: ['max_output_tokens'],
    usage: (p) => responsesUsage(p.usage),
    outputText: responseOutputText,
  },
};
