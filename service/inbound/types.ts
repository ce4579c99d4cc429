/**
 * An inbound API (chat, completions, embeddings, responses, Anthropic messages) as data: how
 * its requests are authenticated and validated, which routed endpoint it uses, what each
 * provider type is sent, how an answer and a stream go back to the client, where the usage is,
 * and what its errors look like. One pipeline (http/pipeline.ts) serves every spec; a new
 * inbound API is a new spec, never a copy of the pipeline. The shape follows Envoy AI
 * Gateway's endpoint specs, each pairing the client's schema with a provider's translator.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Endpoint } from '../core/endpoints';
import type { GatewayError } from '../core/errors';
import type { Candidate } from '../routing/catalog';
import type { Usage } from '../tenancy/contracts';
import type { StreamEnd, StreamHandle } from '../upstream/executor';
import type { ValidRequest } from './validate';

export type { StreamEnd };

/** What a relayed stream told about itself, for settlement and the stored-response record. */
export interface StreamResult {
  end: StreamEnd;
  /** Usage the provider reported so far. */
  usage?: Usage;
  /** The usage is the provider's final count (the stream's last usage event arrived), not a running one. */
  usageFinal: boolean;
  /** The model the provider says answered. */
  model?: string;
  /** Text this attempt sent the client, for an estimate when the usage is missing or not final. */
  outputText: string;
  /** Everything the client received so far, continuations included (what a next continuation continues). */
  sentText: string;
  /** The stream carried tool calls: it is not continued elsewhere. */
  toolCalls: boolean;
  /** Unreadable upstream events skipped. */
  dropped?: number;
  /** Responses API: the response id the stream created, its output message item, its last sequence number, its output items. */
  responseId?: string;
  itemIds?: string[];
  itemId?: string;
  sequence?: number;
  /** Anthropic messages: the last content block the client saw, and whether it is a text block still open. */
  blockIndex?: number;
  textOpen?: boolean;
}

/** One non-streaming answer as the client gets it, with what settlement needs. */
export interface JsonAnswer {
  body: string | Buffer;
  usage?: Usage;
  /** The answer's text, for an estimate when the provider reported no usage (read only then). */
  outputText(): string;
  model?: unknown;
  /** Responses API: the stored response's id, and its output items' ids. */
  id?: unknown;
  itemIds?: string[];
}

export interface RelayArgs {
  handle: StreamHandle;
  res: ServerResponse;
  candidate: Candidate;
  valid: ValidRequest;
  /** Applied to the text of each write (the requested model name for a mapped one); undefined costs nothing. */
  rewrite?: (text: string) => string;
}

/** How the inbound API's clients read an error response (a broken stream's error event is the relay's, see relayStream). */
export interface ErrorShape {
  body(e: GatewayError, requestId: string): string;
}

export interface ContinuationSpec {
  /** The request that continues `partial` (the text the client has) in a mode. */
  request(valid: ValidRequest, partial: string, mode: 'prefill' | 'instruction'): ValidRequest;
  /** Relays a continuation stream into the client's stream after `prior`; `hold` as relayStream's. */
  relay(a: RelayArgs, prior: StreamResult, hold: boolean): Promise<StreamResult>;
  /** Ends a stream that broke (and was held) with the API's error event. */
  end(res: ServerResponse, prior: StreamResult): void;
}

export interface InboundSpec {
  /** The endpoint label of metrics, logs and traces. */
  readonly name: string;
  /** Public path (POST). */
  readonly path: string;
  /** The routed endpoint: catalog, strategies, limits and the upstream path of OpenAI-type providers. */
  readonly endpoint: Endpoint;
  /** Providers of this type answer in this API's own wire format: relayed, never translated. */
  readonly nativeType?: string;
  /** The Authorization value the gateway's authenticator reads (e.g. Anthropic SDKs send x-api-key). */
  authorization(headers: IncomingHttpHeaders): string | undefined;
  validate(body: unknown): ValidRequest;
  /**
   * The body each candidate is sent, as bytes (memoised per upstream model inside): the JSON text
   * made for it lives no longer than its encoding, so a request in flight keeps its prompt once in
   * the JS heap (the parsed request), not twice, and a collection finds less of it alive.
   */
  bodyFor(valid: ValidRequest): (c: Candidate) => Buffer;
  /** A 2xx JSON answer (already in the OpenAI shape for other wire formats, unless native) as the client gets it. */
  answer(json: { raw: Buffer; parsed: Record<string, unknown> }, c: Candidate, valid: ValidRequest, rewrite?: (text: string) => string): JsonAnswer;
  /**
   * Relays a stream whose first event is in, to its end; writes the API's error event when the
   * provider fails after the first byte, unless `hold` (a continuation may follow: see continuation).
   */
  relayStream(a: RelayArgs, hold: boolean): Promise<StreamResult>;
  /** How a stream cut after its first byte goes on at another provider; absent: it is not continued. */
  readonly continuation?: ContinuationSpec;
  readonly errors: ErrorShape;
  /** Non-streaming answers may be served from the response cache. */
  readonly cacheable: boolean;
  /** Answers are stored at the provider (Responses API): ids recorded per team, previous_response_id pinned to its provider. */
  readonly storesResponses: boolean;
}
