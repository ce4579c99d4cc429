/**
 * The span names and attributes the gateway emits, named once. GenAI names and well-known
 * values follow the OpenTelemetry GenAI semantic conventions (as published in
 * @opentelemetry/semantic-conventions 1.45, incubating: copied here, as that package advises
 * for unstable attributes); `aigw.*` are the gateway's own. No attribute ever carries
 * prompt or completion content, a header, or a key.
 */
import type { Endpoint } from '../core/endpoints';

export const ATTR = {
  operation: 'gen_ai.operation.name',
  provider: 'gen_ai.provider.name',
  requestModel: 'gen_ai.request.model',
  responseModel: 'gen_ai.response.model',
  inputTokens: 'gen_ai.usage.input_tokens',
  outputTokens: 'gen_ai.usage.output_tokens',
  method: 'http.request.method',
  route: 'http.route',
  urlPath: 'url.path',
  status: 'http.response.status_code',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  errorType: 'error.type',
  team: 'aigw.team',
  project: 'aigw.project',
  costUsd: 'aigw.cost_usd',
  requestId: 'aigw.request_id',
  attempt: 'aigw.attempt',
  attempts: 'aigw.attempts',
  cache: 'aigw.cache',
  strategy: 'aigw.route.strategy',
  gatewayProvider: 'aigw.provider',
  stream: 'aigw.stream',
  streamOutcome: 'aigw.stream.outcome',
  usageEstimated: 'aigw.usage.estimated',
} as const;

/** gen_ai.operation.name per endpoint (a typed table: a new endpoint does not compile without its operation). */
export const OPERATION: Record<Endpoint, 'chat' | 'text_completion' | 'embeddings'> = {
  chat: 'chat',
  completion: 'text_completion',
  embedding: 'embeddings',
  // The Responses API generates a model answer from input items, as chat does.
  responses: 'chat',
};

/** gen_ai.provider.name per provider type: the convention's well-known values. */
const PROVIDER_NAME: Record<string, string> = {
  openai: 'openai',
  azure: 'azure.ai.openai',
  anthropic: 'anthropic',
  bedrock: 'aws.bedrock',
};

export const genAiProviderName = (type: string): string => PROVIDER_NAME[type] ?? type;

/** The GenAI span name: `{gen_ai.operation.name} {gen_ai.request.model}`. */
/** The operation of an inspected endpoint; undefined for pass-through paths (their label is the path). */
export const operationOf = (endpoint: string): (typeof OPERATION)[Endpoint] | undefined => (Object.prototype.hasOwnProperty.call(OPERATION, endpoint) ? OPERATION[endpoint as Endpoint] : undefined);

export const genAiSpanName = (endpoint: Endpoint, model: string): string => `${OPERATION[endpoint]} ${model}`;

/** The HTTP server span name: `{method} {route}` when the route is known, else just the method (low cardinality). */
export const serverSpanName = (method: string, route: string | undefined): string => (route ? `${method} ${route}` : method);

/** server.address and server.port of a provider's base URL (no path, no query, no credentials). */
export function serverOf(baseUrl: string): { address: string; port: number } {
  const u = new URL(baseUrl);
  return { address: u.hostname, port: u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80 };
}
