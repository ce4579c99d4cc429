/**
 * Per-request bookkeeping shared by the Express app and the inference fast path: the
 * request id, timing, the in-flight count (graceful shutdown waits on it), and when the
 * response closes one log line and the request metrics. What a handler learns along the
 * way (endpoint, model, provider, principal, outcome) goes into one small typed record.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/metrics';
import { statusClass } from '../metrics/metrics';
import type { RequestTrace, Tracing } from '../telemetry/trace-types';
import type { Principal, Usage } from '../tenancy/contracts';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** What one request did, for its log line and metrics. Every field is declared up front (one object shape). */
export class RequestRecord {
  /** A routed endpoint, `responses_object` (a stored response by id) or a pass-through path: bounded by the config. */
  endpoint: string | undefined = undefined;
  principal: Principal | undefined = undefined;
  model: string | undefined = undefined;
  provider: string | undefined = undefined;
  /** The model name the provider was sent, when the request reached one (the log line only). */
  upstreamModel: string | undefined = undefined;
  attempts: number | undefined = undefined;
  stream: boolean | undefined = undefined;
  streamOutcome: string | undefined = undefined;
  /** Providers that continued the stream after another broke it, in order (comma-separated). */
  continuedBy: string | undefined = undefined;
  costUsd: number | undefined = undefined;
  errorCode: string | undefined = undefined;
  strategy: string | undefined = undefined;
  responseModel: string | undefined = undefined;
  usage: { usage: Usage; estimated: boolean } | undefined = undefined;
  /** The request's server span when tracing is on. */
  trace: RequestTrace | undefined = undefined;

  constructor(
    readonly tracker: RequestTracker,
    readonly requestId: string,
    readonly startedAt: number,
    /** The path to log; undefined for Express routes, whose req.path is read when the response closes. */
    readonly path: string | undefined,
  ) {}
}

const RECORD = Symbol('gateway.request');
type Tracked = ServerResponse & { [RECORD]?: RequestRecord };

/** The record startRequest attached to this response. */
export function recordOf(res: ServerResponse): RequestRecord {
  return (res as Tracked)[RECORD]!;
}

export class RequestTracker {
  /** Requests in flight right now. */
  inflight = 0;
  /** Set on shutdown: responses then carry connection: close. */
  draining = false;
  /**
   * Writes the per-request line. Its fields are all strings, numbers and booleans, which the
   * logger's nested-path redaction (`*.authorization` and the like) can never match, yet pino
   * would still run every field through the wildcard redactor (about 17 KB of garbage per
   * line): a child without redaction writes the same line without that work.
   */
  readonly requestLog: Logger;

  constructor(
    readonly logger: Logger,
    readonly metrics: Metrics,
    readonly now: () => number,
    readonly tracing?: Tracing,
  ) {
    this.requestLog = typeof logger.child === 'function' ? logger.child({}, { redact: [] }) : logger;
  }

  /** Starts the bookkeeping of one request: x-request-id, connection: close while draining, in-flight count, and the log line and metrics on close. */
  start(req: IncomingMessage, res: ServerResponse, path?: string): RequestRecord {
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    const rec = new RequestRecord(this, requestId, this.now(), path);
    (res as Tracked)[RECORD] = rec;
    if (this.tracing !== undefined) rec.trace = this.tracing.start(req, path);
    res.setHeader('x-request-id', requestId);
    if (this.draining) res.setHeader('connection', 'close');
    this.inflight++;
    this.metrics.inflight.inc();
    // 'close' is emitted once per response: a plain listener, no per-request closure.
    res.on('close', onResponseClose);
    return rec;
  }
}

function onResponseClose(this: ServerResponse): void {
  const res = this;
  const l = recordOf(res);
  const { requestLog, metrics } = l.tracker;
  l.tracker.inflight--;
  metrics.inflight.dec();
  const seconds = (l.tracker.now() - l.startedAt) / 1000;
  const status = res.statusCode;
  if (l.endpoint) {
    metrics.requests.inc({
      endpoint: l.endpoint,
      provider: l.provider ?? 'none',
      model: l.model ?? 'unknown',
      team: l.principal?.team ?? 'unauthenticated',
      project: l.principal?.project ?? 'unauthenticated',
      status_class: statusClass(status),
    });
    metrics.requestDuration.observe({ endpoint: l.endpoint, provider: l.provider ?? 'none', model: l.model ?? 'unknown', stream: l.stream ? 'true' : 'false' }, seconds);
  }
  l.trace?.end(l, res);
  const req = res.req as IncomingMessage & { path?: string };
  const path = l.path ?? (req.path as string);
  requestLog.info({
    request_id: l.requestId,
    trace_id: l.trace?.traceId,
    method: req.method,
    path: path.length > 200 ? `${path.slice(0, 200)}...` : path,
    status,
    duration_ms: Math.round(seconds * 1e4) / 10,
    endpoint: l.endpoint,
    model: l.model,
    upstream_model: l.upstreamModel,
    provider: l.provider,
    attempts: l.attempts,
    stream: l.stream,
    stream_outcome: l.streamOutcome,
    continued_by: l.continuedBy,
    team: l.principal?.team,
    project: l.principal?.project,
    key: l.principal?.keyName,
    cost_usd: l.costUsd,
    error_code: l.errorCode,
    client_gone: !res.writableFinished || undefined,
  });
}
