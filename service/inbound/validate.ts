/**
 * Minimal validation of client requests: enough to route them and to refuse what would
 * only fail later. Everything else (unknown fields included) passes through to the provider
 * untouched, as the OpenAI API evolves faster than any gateway.
 */
import { Endpoint, ENDPOINTS } from '../core/endpoints';
import { badRequest } from '../core/errors';

/** Upper bound on max_tokens/max_completion_tokens: no model generates more in one response. */
export const MAX_OUTPUT_TOKENS = 1_000_000;

export interface ValidRequest {
  model: string;
  stream: boolean;
  /** The client itself asked for the usage chunk (stream_options.include_usage). */
  clientWantsUsage: boolean;
  body: Record<string, unknown>;
  /** Requested output cap, when given. */
  maxTokens?: number;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export function validateRequest(endpoint: Endpoint, body: unknown): ValidRequest {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('The request body must be a JSON object.', 'invalid_body');
  }
  const b = body as Record<string, unknown>;
  const model = b.model;
  if (model === undefined || model === null || model === '') throw badRequest('You must provide a model parameter.', 'missing_model', 'model');
  if (typeof model !== 'string') throw badRequest('"model" must be a string.', 'invalid_model', 'model');
  if (model.length > 256 || CONTROL.test(model)) throw badRequest('"model" is not a valid model name.', 'invalid_model', 'model');

  const spec = ENDPOINTS[endpoint];
  const field = spec.required;
  const value = field === undefined ? undefined : b[field];
  if (field !== undefined && (value === undefined || value === null)) throw badRequest(`Missing required parameter: "${field}".`, 'missing_required_parameter', field);
  if (endpoint === 'chat' && (!Array.isArray(value) || value.length === 0)) {
    throw badRequest('"messages" must be a non-empty array.', 'invalid_messages', 'messages');
  }
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') throw badRequest('"stream" must be a boolean.', 'invalid_type', 'stream');
  const stream = b.stream === true;
  if (stream && !spec.streams) throw badRequest('Embeddings do not support streaming.', 'invalid_type', 'stream');
  if (endpoint === 'responses' && b.previous_response_id !== undefined && b.previous_response_id !== null && typeof b.previous_response_id !== 'string') {
    throw badRequest('"previous_response_id" must be a string.', 'invalid_type', 'previous_response_id');
  }

  let maxTokens: number | undefined;
  for (const key of spec.maxTokenFields) {
    const v = b[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_OUTPUT_TOKENS) {
      throw badRequest(`"${key}" must be an integer between 1 and ${MAX_OUTPUT_TOKENS}.`, 'invalid_value', key);
    }
    maxTokens = v;
  }
  const so = b.stream_options as { include_usage?: unknown } | undefined;
  if (so !== undefined && so !== null && (typeof so !== 'object' || Array.isArray(so))) throw badRequest('"stream_options" must be an object.', 'invalid_type', 'stream_options');
  return { model, stream, clientWantsUsage: so?.include_usage === true, body: b, maxTokens };
}
