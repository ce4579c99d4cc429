/**
 * The gateway's error hierarchy, mapped once to the OpenAI error shape:
 *   {"error": {"message", "type", "code", "param"}}
 * Messages are written for the client: never a provider key, an upstream URL or a stack trace.
 */
export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'insufficient_quota'
  | 'api_error'
  | 'upstream_error'
  | 'timeout_error'
  | 'service_unavailable';

export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly type: ErrorType,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'GatewayError';
  }

  toBody(): { error: { message: string; type: string; code: string; param: string | null } } {
    return { error: { message: this.message, type: this.type, code: this.code, param: this.param } };
  }
}

export const badRequest = (message: string, code = 'invalid_request', param: string | null = null) => new GatewayError(400, 'invalid_request_error', code, message, {}, param);

export const unauthorized = (message: string, code = 'invalid_api_key') => new GatewayError(401, 'authentication_error', code, message, { 'www-authenticate': 'Bearer' });

export const forbidden = (message: string, code = 'forbidden') => new GatewayError(403, 'permission_error', code, message);

export const notFound = (message: string, code = 'not_found') => new GatewayError(404, 'not_found_error', code, message);

export const modelNotFound = (model: string) =>
  new GatewayError(404, 'invalid_request_error', 'model_not_found', `The model "${model}" does not exist or is not served by this gateway. GET /v1/models lists the models.`, {}, 'model');

export const payloadTooLarge = (limit: number) => new GatewayError(413, 'invalid_request_error', 'request_too_large', `Request body is larger than the limit of ${limit} bytes.`);

export const rateLimited = (message: string, retryAfterSeconds: number, headers: Record<string, string> = {}, code = 'rate_limit_exceeded') =>
  new GatewayError(429, 'rate_limit_error', code, message, { ...headers, 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) });

export const budgetExceeded = (message: string, retryAfterSeconds?: number) =>
  new GatewayError(429, 'insufficient_quota', 'budget_exceeded', message, retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) });

export const upstreamUnavailable = (message: string, code = 'upstream_unavailable') => new GatewayError(502, 'upstream_error', code, message);

export const upstreamTimeout = (message: string) => new GatewayError(504, 'timeout_error', 'upstream_timeout', message);

export const serviceUnavailable = (message: string, code = 'service_unavailable') => new GatewayError(503, 'service_unavailable', code, message);

export const internalError = () => new GatewayError(500, 'api_error', 'internal_error', 'The gateway hit an internal error. The request id in x-request-id identifies it in the logs.');

/** Anything thrown becomes a GatewayError; unknown errors never leak their text. */
export function toGatewayError(err: unknown): GatewayError {
  return err instanceof GatewayError ? err : internalError();
}
