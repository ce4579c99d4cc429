/** What most providers share: the status classes of HTTP and the OpenAI error body. */
import type { Usage } from '../core/endpoints';
import type { StatusClass, UpstreamErrorBody } from './types';

/** Statuses worth another try on the same provider. */
const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

export const isRetryableStatus = (status: number): boolean => RETRYABLE_STATUS.has(status);

/** A provider answering these has a bad key or no access: fail over and mark it unhealthy. */
export const isProviderAuthFailure = (status: number): boolean => status === 401 || status === 403;

/**
 * A 4xx saying the request is longer than the model's context window: OpenAI and Azure's
 * `context_length_exceeded` code, Anthropic's "prompt is too long", Bedrock's "Input is too long".
 */
export function isContextLengthError(code: string | null | undefined, message: string): boolean {
  return code === 'context_length_exceeded' || /context[ _]length|context window|maximum context|prompt is too long|input is too long/i.test(message);
}

export function defaultStatusClass(status: number): StatusClass {
  if (isRetryableStatus(status)) return 'retryable';
  if (isProviderAuthFailure(status)) return 'auth';
  if (status === 404) return 'not_found';
  if (status >= 400 && status < 500) return 'client';
  return 'other';
}

/** `{"error":{"message","type","code","param"}}`, the OpenAI error body. */
export function openAiErrorBody(text: string): UpstreamErrorBody | undefined {
  try {
    const e = (JSON.parse(text) as { error?: { message?: unknown; type?: unknown; code?: unknown; param?: unknown } })?.error;
    if (!e || typeof e.message !== 'string') return undefined;
    return {
      message: e.message,
      type: typeof e.type === 'string' ? e.type : 'invalid_request_error',
      code: typeof e.code === 'string' ? e.code : null,
      param: typeof e.param === 'string' ? e.param : null,
    };
  } catch {
    return undefined;
  }
}

const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/**
 * Usage of providers whose input count excludes prompt-cache reads and writes (Anthropic,
 * Bedrock): the OpenAI prompt_tokens counts all of it, with the cache reads as cached_tokens.
 */
export function cacheAwareUsage(input: unknown, output: unknown, cacheRead: unknown, cacheWrite: unknown): Usage | undefined {
  if (typeof input !== 'number') return undefined;
  const cached = count(cacheRead);
  const usage: Usage = { prompt_tokens: input + cached + count(cacheWrite), completion_tokens: count(output) };
  if (cached) usage.cached_tokens = cached;
  return usage;
}

/** The chat `usage` object for a Usage. */
export function chatUsageObject(u: Usage): Record<string, unknown> {
  const out: Record<string, unknown> = { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.prompt_tokens + u.completion_tokens };
  if (u.cached_tokens) out.prompt_tokens_details = { cached_tokens: u.cached_tokens };
  return out;
}
