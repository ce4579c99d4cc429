/**
 * What every provider adapter does: where and how a call is sent (URL, auth headers), how
 * the upstream's answer and stream are read back in the OpenAI shape, which statuses are
 * worth a retry, and how its error bodies read. Adapters know nothing about routing,
 * retries, limits or accounting; they import nothing from http/.
 */
import type { ProviderConfig } from '../config/schema';
import type { Endpoint, Usage } from '../core/endpoints';

export interface Target {
  origin: string;
  path: string;
  headers: Record<string, string>;
}

/** How an upstream status is handled: retried (and failed over), the provider's credentials, absent, the client's fault, other. */
export type StatusClass = 'retryable' | 'auth' | 'not_found' | 'client' | 'other';

/** An upstream error body read into the OpenAI error fields. */
export interface UpstreamErrorBody {
  message: string;
  type: string;
  code: string | null;
  param: string | null;
}

/** Translates one upstream SSE event (its text, without the blank line) into OpenAI SSE text ('' for nothing). */
export interface StreamTranslator {
  event(text: string): string;
}

/**
 * One stream's translation, synchronous, chunk by chunk (so a provider body can be pushed through
 * it: upstream/body-chunks.ts). push() throws a StreamEventError for an event the stream cannot
 * go on after (after the events before it were returned by an earlier push); `failure` is such an
 * error that follows the output push() just returned.
 */
export interface ChunkTranslator {
  /** The translation of the events `bytes` completes ('' for none). */
  push(bytes: Buffer): string;
  /** The translation of what the stream ended with. */
  end(): string;
  readonly failure?: Error;
}

/** A provider that does not speak the OpenAI wire format: request, answer and stream are translated. */
export interface Translation {
  /** The upstream request body for an OpenAI-shaped client request (throws RequestTranslationError when it cannot be expressed). */
  requestBody(endpoint: Endpoint, body: Record<string, unknown>, upstreamModel: string, provider: ProviderConfig, stream: boolean): string;
  /** The upstream's JSON answer in the OpenAI shape of the endpoint. `nowSec`: unix seconds for `created`; `model`: the name it was sent. */
  responseJson(parsed: Record<string, unknown>, nowSec: number, model: string): Record<string, unknown>;
  /** One upstream stream's translation to OpenAI SSE, chunk by chunk. */
  streamTranslator(nowSec: number, model: string): ChunkTranslator;
  /** The content type of the upstream's streams (default text/event-stream). */
  streamContentType?: string;
  /** Usage in the provider's own answer. */
  usage(parsed: Record<string, unknown>): Usage | undefined;
}

export interface ProviderAdapter {
  /** providers[].type */
  readonly type: string;
  /** Endpoints a provider of this type serves when it declares none. */
  readonly defaultEndpoints: readonly Endpoint[];
  /** Endpoints it can serve at all (providers[].endpoints must stay within them). */
  readonly supportedEndpoints: readonly Endpoint[];
  /** Whether pass-through and stored-object paths can go to it (targetForPath). */
  readonly forwardsPaths: boolean;
  target(provider: ProviderConfig, endpoint: Endpoint, upstreamModel: string, stream: boolean): Target;
  /** Headers that authenticate one call (request signing), when the static target headers do not; `env` holds the credentials. */
  sign?(provider: ProviderConfig, target: Target, body: Buffer, env: NodeJS.ProcessEnv): Promise<Record<string, string>>;
  /** Loads what the adapter needs before its first call; run at start-up for each configured provider's type (upstream/client.ts). */
  prepare?(): void;
  /** A pass-through or stored-object path below /v1 (only when forwardsPaths). */
  targetForPath(provider: ProviderConfig, subpath: string, search: string): Target;
  classifyStatus(status: number): StatusClass;
  /** The upstream's error body in OpenAI fields, or undefined when it is not in the provider's error shape. */
  errorBody(text: string): UpstreamErrorBody | undefined;
  /** Undefined: the OpenAI wire format, relayed byte for byte. */
  readonly translation?: Translation;
}

/** A client request the provider type cannot express (answered 400, no failover). */
export class RequestTranslationError extends Error {
  constructor(
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

/** An error event inside an upstream stream; `retryable` before the first byte means fail over. */
export class StreamEventError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** The gateway has no usable credentials for a provider (e.g. no AWS keys in its environment): its configuration, like a 401. */
export class CredentialsError extends Error {}
