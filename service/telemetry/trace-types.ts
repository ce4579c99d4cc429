/**
 * The gateway's tracing contract: the small interfaces the request path sees. A leaf module
 * (types only), so the OpenTelemetry implementation (otel.ts) and the start (tracing.ts)
 * both depend on it and not on each other.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Endpoint } from '../core/endpoints';
import type { Candidate } from '../routing/catalog';
import type { Usage } from '../tenancy/contracts';

/** What the request record knows when the response closes (the http layer's RequestRecord satisfies it). */
export interface RequestFacts {
  readonly requestId: string;
  /** An inspected endpoint's name, or a pass-through path. */
  endpoint: string | undefined;
  principal: { team: string; project: string } | undefined;
  model: string | undefined;
  provider: string | undefined;
  attempts: number | undefined;
  stream: boolean | undefined;
  streamOutcome: string | undefined;
  costUsd: number | undefined;
  errorCode: string | undefined;
  strategy: string | undefined;
  responseModel: string | undefined;
  usage: { usage: Usage; estimated: boolean } | undefined;
}

/** How one attempt ended (the executor's own outcome type satisfies it). */
export interface AttemptOutcome {
  kind: 'success' | 'failure' | 'client_error' | 'too_long' | 'client_gone';
  reason?: string;
  status?: number;
  error?: { status: number };
  result?: { json?: unknown };
}

export interface AttemptTrace {
  /** Headers that carry this attempt's context to the provider (traceparent, tracestate). */
  readonly headers: Record<string, string>;
  /** Failures end the span now; the successful attempt's span ends with the request (a stream's when it ends), with usage. */
  end(outcome: AttemptOutcome): void;
}

export interface RequestTrace {
  readonly traceId: string;
  attempt(candidate: Candidate, endpoint: Endpoint, attempt: number): AttemptTrace;
  /** A named event on the request's server span (e.g. a stream continued on another provider). */
  event(name: string, attributes: Record<string, string | number>): void;
  /** Called once, when the response closes. */
  end(facts: RequestFacts, res: ServerResponse): void;
}

export interface Tracing {
  /** Starts the server span of a request; undefined for paths that are not traced (probes). */
  start(req: IncomingMessage, route: string | undefined): RequestTrace | undefined;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}
