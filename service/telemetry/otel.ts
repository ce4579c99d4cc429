/**
 * Tracing with the OpenTelemetry trace SDK; loaded (by tracing.ts) only when tracing is on.
 * Contexts are passed explicitly (no global context manager, no async hooks): the server
 * span's context is kept on the request, attempts are started under it, and W3C trace
 * context is extracted from the client's headers and injected into each provider call.
 */
import { performance } from 'node:perf_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Attributes, DiagLogLevel, ROOT_CONTEXT, Span, SpanKind, SpanStatusCode, Tracer, defaultTextMapGetter, defaultTextMapSetter, diag, trace } from '@opentelemetry/api';
import type { Context } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, ConsoleSpanExporter, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Logger } from 'pino';
import type { Endpoint } from '../core/endpoints';
import type { Candidate } from '../routing/catalog';
import { ATTR, OPERATION, genAiProviderName, genAiSpanName, operationOf, serverOf, serverSpanName } from './semconv';
import type { TracingSettings } from './settings';
import type { AttemptOutcome, AttemptTrace, RequestFacts, RequestTrace, Tracing } from './trace-types';
import { routeKey, targetPath } from '../core/target';

const propagator = new W3CTraceContextPropagator();

/** server.address/port per provider, parsed once. */
const servers = new WeakMap<Candidate['provider'], { address: string; port: number }>();
function serverOfProvider(p: Candidate['provider']): { address: string; port: number } {
  let s = servers.get(p);
  if (!s) servers.set(p, (s = serverOf(p.base_url)));
  return s;
}

function exporterFor(s: Extract<TracingSettings, { enabled: true }>): SpanExporter {
  if (s.exporter === 'console') return new ConsoleSpanExporter();
  // Endpoint, headers, timeout and compression come from the OTEL_EXPORTER_OTLP_* variables; `url` only from the gateway config.
  const config = s.url ? { url: s.url } : {};
  return s.protocol === 'http/json' ? new OtlpJsonExporter(config) : new OtlpProtoExporter(config);
}

/** The SDK's own diagnostics (export failures) go to the gateway log, warnings and up only. */
function diagLogger(logger: Logger) {
  const warn = (message: string) => logger.warn({ component: 'otel' }, message);
  const none = () => undefined;
  return { error: warn, warn, info: none, debug: none, verbose: none };
}

export function createOtelTracing(s: Extract<TracingSettings, { enabled: true }>, logger: Logger): Tracing {
  diag.setLogger(diagLogger(logger), DiagLogLevel.WARN);
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (envDetector) override the gateway's default name.
  const resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': 'ai-gateway' }))
    .merge(detectResources({ detectors: [envDetector] }));
  // BasicTracerProvider reads OTEL_TRACES_SAMPLER/_ARG and the span limits; BatchSpanProcessor reads OTEL_BSP_*.
  const provider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(exporterFor(s))] });
  const tracer = provider.getTracer('ai-gateway');
  logger.info({ exporter: s.exporter, protocol: s.exporter === 'otlp' ? s.protocol : undefined, endpoint: s.url ? 'gateway config' : 'OTEL_* environment' }, 'tracing on');
  return {
    start: (req, route) => (routeKey(targetPath(req.url ?? '')).startsWith('/v1/') ? new OtelRequestTrace(tracer, req, route) : undefined),
    shutdown: () => provider.shutdown(),
  };
}

class OtelAttempt implements AttemptTrace {
  readonly headers: Record<string, string> = {};
  succeeded = false;
  ended = false;
  /** A JSON answer is complete when the executor has read it: the span ends at that time. */
  endAt: number | undefined = undefined;

  constructor(
    readonly span: Span,
    readonly candidate: Candidate,
    /** True once the request's response has closed (the client may leave mid-attempt). */
    private readonly requestEnded: () => boolean,
  ) {
    propagator.inject(trace.setSpan(ROOT_CONTEXT, span), this.headers, defaultTextMapSetter);
  }

  end(o: AttemptOutcome): void {
    if (this.ended) return; // the request closed first and ended it
    if (o.kind === 'success') {
      this.succeeded = true;
      if (o.result?.json) this.endAt = performance.now();
      if (this.requestEnded()) this.finish(); // nobody will end it with the request any more
      return;
    }
    const status = o.status ?? o.error?.status;
    if (status) this.span.setAttribute(ATTR.status, status);
    this.span.setAttribute(ATTR.errorType, o.kind === 'client_gone' ? 'client_gone' : o.kind === 'too_long' ? 'context_length_exceeded' : (o.reason ?? String(status ?? o.kind)));
    this.span.setStatus({ code: SpanStatusCode.ERROR });
    this.finish();
  }

  finish(endAt?: number): void {
    if (this.ended) return;
    this.ended = true;
    this.span.end(endAt);
  }

  /** Ends an attempt still in flight when the request closed (the client left, or the deadline passed). */
  abandon(clientGone: boolean): void {
    if (this.ended) return;
    if (clientGone) {
      this.span.setAttribute(ATTR.errorType, 'client_gone');
      this.span.setStatus({ code: SpanStatusCode.ERROR });
    }
    this.finish();
  }
}

class OtelRequestTrace implements RequestTrace {
  readonly traceId: string;
  private readonly span: Span;
  private readonly ctx: Context;
  private readonly attempts: OtelAttempt[] = [];
  private ended = false;
  private readonly isEnded = () => this.ended;

  constructor(
    private readonly tracer: Tracer,
    req: IncomingMessage,
    private readonly route: string | undefined,
  ) {
    const parent = propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const attributes: Attributes = { [ATTR.method]: method, [ATTR.urlPath]: targetPath(url).slice(0, 200) };
    if (route) attributes[ATTR.route] = route;
    this.span = tracer.startSpan(serverSpanName(method, route), { kind: SpanKind.SERVER, attributes }, parent);
    this.ctx = trace.setSpan(ROOT_CONTEXT, this.span);
    this.traceId = this.span.spanContext().traceId;
  }

  event(name: string, attributes: Record<string, string | number>): void {
    if (!this.ended) this.span.addEvent(name, attributes);
  }

  attempt(c: Candidate, endpoint: Endpoint, n: number): AttemptTrace {
    const server = serverOfProvider(c.provider);
    const span = this.tracer.startSpan(
      genAiSpanName(endpoint, c.upstreamModel),
      {
        kind: SpanKind.CLIENT,
        attributes: {
          [ATTR.operation]: OPERATION[endpoint],
          [ATTR.provider]: genAiProviderName(c.provider.type),
          [ATTR.requestModel]: c.upstreamModel,
          [ATTR.gatewayProvider]: c.provider.name,
          [ATTR.attempt]: n,
          [ATTR.method]: 'POST',
          [ATTR.serverAddress]: server.address,
          [ATTR.serverPort]: server.port,
        },
      },
      this.ctx,
    );
    const a = new OtelAttempt(span, c, this.isEnded);
    this.attempts.push(a);
    return a;
  }

  end(f: RequestFacts, res: ServerResponse): void {
    this.ended = true;
    const status = res.statusCode;
    const a: Attributes = { [ATTR.status]: status };
    this.nameExpressRoute(res);
    const operation = f.endpoint ? operationOf(f.endpoint) : undefined;
    if (operation) {
      a[ATTR.operation] = operation;
      const cache = res.getHeader('x-gateway-cache');
      a[ATTR.cache] = typeof cache === 'string' ? cache : 'none';
    }
    const winner = this.attempts.find((x) => x.succeeded);
    if (winner) a[ATTR.provider] = genAiProviderName(winner.candidate.provider.type);
    const usage = usageAttributes(f);
    Object.assign(a, usage, gatewayAttributes(f));
    if (status >= 400) a[ATTR.errorType] = f.errorCode ?? String(status);
    this.span.setAttributes(a);
    if (status >= 500) this.span.setStatus({ code: SpanStatusCode.ERROR });
    if (winner) {
      winner.span.setAttributes(usage);
      if (f.streamOutcome) winner.span.setAttribute(ATTR.streamOutcome, f.streamOutcome);
      winner.finish(winner.endAt);
    }
    for (const x of this.attempts) x.abandon(!res.writableFinished);
    this.span.end();
  }

  /** Express routes are known only once routed: name the span after the matched route. */
  private nameExpressRoute(res: ServerResponse): void {
    if (this.route) return;
    const req = res.req as IncomingMessage & { route?: { path?: unknown }; baseUrl?: string };
    if (typeof req.route?.path !== 'string') return;
    const route = `${req.baseUrl ?? ''}${req.route.path}`;
    this.span.setAttribute(ATTR.route, route);
    this.span.updateName(serverSpanName(req.method ?? 'GET', route));
  }
}

function usageAttributes(f: RequestFacts): Attributes {
  const a: Attributes = {};
  if (f.responseModel) a[ATTR.responseModel] = f.responseModel;
  if (f.usage) {
    a[ATTR.inputTokens] = f.usage.usage.prompt_tokens;
    a[ATTR.outputTokens] = f.usage.usage.completion_tokens;
    a[ATTR.usageEstimated] = f.usage.estimated;
  }
  return a;
}

function gatewayAttributes(f: RequestFacts): Attributes {
  const a: Attributes = { [ATTR.requestId]: f.requestId };
  if (f.model) a[ATTR.requestModel] = f.model;
  if (f.principal) {
    a[ATTR.team] = f.principal.team;
    a[ATTR.project] = f.principal.project;
  }
  if (f.costUsd !== undefined) a[ATTR.costUsd] = f.costUsd;
  if (f.attempts !== undefined) a[ATTR.attempts] = f.attempts;
  if (f.strategy) a[ATTR.strategy] = f.strategy;
  if (f.provider) a[ATTR.gatewayProvider] = f.provider;
  if (f.stream !== undefined) a[ATTR.stream] = f.stream;
  if (f.streamOutcome) a[ATTR.streamOutcome] = f.streamOutcome;
  return a;
}
