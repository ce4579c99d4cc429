/**
 * `type: anthropic`: Anthropic's Messages API (POST {base_url}/v1/messages, x-api-key and
 * anthropic-version headers). OpenAI chat requests are translated to it, answers and
 * streams back (see anthropic-request.ts, anthropic-response.ts).
 */
import { ProviderConfig, providerOfType } from '../config/schema';
import { anthropicRequest } from './anthropic-request';
import { AnthropicStreamTranslator, anthropicUsage, chatCompletionOf } from './anthropic-response';
import { defaultStatusClass } from './common';
import { baseOf } from './openai';
import { SseTranslation } from './sse-translate';
import { ProviderAdapter, RequestTranslationError, Target, UpstreamErrorBody } from './types';
import { PROVIDER_FACTS } from '../core/provider-types';

export const ANTHROPIC_VERSION = '2023-06-01';
export const DEFAULT_MAX_TOKENS = 4096;

/** Anthropic error types -> OpenAI error types (the Anthropic type stays as the code). */
const ERROR_TYPES: Record<string, string> = {
  invalid_request_error: 'invalid_request_error',
  request_too_large: 'invalid_request_error',
  not_found_error: 'not_found_error',
  authentication_error: 'authentication_error',
  permission_error: 'permission_error',
  rate_limit_error: 'rate_limit_error',
  api_error: 'upstream_error',
  overloaded_error: 'upstream_error',
};

/** `{"type":"error","error":{"type","message"}}` in the OpenAI error fields. */
export function anthropicErrorBody(text: string): UpstreamErrorBody | undefined {
  try {
    const e = (JSON.parse(text) as { error?: { type?: unknown; message?: unknown } })?.error;
    if (!e || typeof e.message !== 'string') return undefined;
    const type = typeof e.type === 'string' ? e.type : 'invalid_request_error';
    return { message: e.message, type: ERROR_TYPES[type] ?? 'invalid_request_error', code: type, param: null };
  } catch {
    return undefined;
  }
}

export const anthropicAdapter: ProviderAdapter = {
  type: 'anthropic',
  ...PROVIDER_FACTS.anthropic,
  target(config: ProviderConfig): Target {
    const provider = providerOfType(config, 'anthropic');
    const { origin, base } = baseOf(provider);
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'anthropic-version': provider.anthropic_version ?? ANTHROPIC_VERSION };
    if (provider.api_key) headers['x-api-key'] = provider.api_key;
    return { origin, path: `${base}/v1/messages`, headers };
  },
  targetForPath() {
    throw new Error('anthropic providers serve no pass-through paths');
  },
  // 529 overloaded_error: Anthropic's API is overloaded, worth a retry and a failover like a 503.
  classifyStatus: (status) => (status === 529 ? 'retryable' : defaultStatusClass(status)),
  errorBody: anthropicErrorBody,
  translation: {
    requestBody(endpoint, body, upstreamModel, provider, stream) {
      if (endpoint !== 'chat') throw new RequestTranslationError(`The ${endpoint} endpoint is not served by anthropic providers.`);
      return JSON.stringify(anthropicRequest(body, upstreamModel, providerOfType(provider, 'anthropic').default_max_tokens ?? DEFAULT_MAX_TOKENS, stream));
    },
    responseJson: chatCompletionOf,
    streamTranslator: (nowSec) => new SseTranslation(new AnthropicStreamTranslator(nowSec)),
    usage: (parsed) => anthropicUsage(parsed.usage),
  },
};
