/** What most providers share: the status classes of HTTP and the OpenAI error body. */
import { isProviderAuthFailure, isRetryableStatus } from '../routing/backoff';
import type { StatusClass, UpstreamErrorBody } from './types';

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
