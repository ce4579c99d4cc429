/**
 * Error bodies in each inbound API's own shape. OpenAI's clients read
 * {"error":{"message","type","code","param"}}; Anthropic's read
 * {"type":"error","error":{"type","message"},"request_id"} with the type named by the HTTP
 * status (docs.claude.com/en/api/errors), so the Anthropic SDKs raise their typed errors
 * with the gateway's message instead of a raw JSON string.
 */
import type { GatewayError } from '../core/errors';
import type { ErrorShape } from './types';

export const openAiErrors: ErrorShape = {
  body: (e) => JSON.stringify(e.toBody()),
};

/** Anthropic's error type for an HTTP status; other 4xx are invalid_request_error, other 5xx api_error. */
export function anthropicErrorType(status: number): string {
  switch (status) {
    case 401:
      return 'authentication_error';
    case 402:
      return 'billing_error';
    case 403:
      return 'permission_error';
    case 404:
      return 'not_found_error';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_error';
    case 503:
    case 529:
      return 'overloaded_error';
    default:
      return status < 500 ? 'invalid_request_error' : 'api_error';
  }
}

export const anthropicErrors: ErrorShape = {
  body: (e, requestId) => JSON.stringify({ type: 'error', error: { type: anthropicErrorType(e.status), message: e.message }, request_id: requestId }),
};
