/**
 * createApp(deps): wires middleware and routes. Takes its stores, clock, randomness and
 * upstream client as parameters, so tests build their own; main.ts is the only place that
 * reads the environment.
 */
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import type { Logger } from 'pino';
import type { GatewayConfig } from './config/schema';
import { jsonBody } from './http/body';
import type { GatewayContext } from './http/context';
import { forbidden, GatewayError, notFound, toGatewayError, upstreamUnavailable } from './http/errors';
import { inferenceHandler } from './http/inference';
import type { Metrics } from './metrics/metrics';
import { statusClass } from './metrics/metrics';
import { buildCatalog, Endpoint } from './routing/catalog';
import { CircuitBreakers } from './routing/circuit-breaker';
import { StatsTracker } from './routing/provider-stats';
import type { ResponseCache, Tenancy } from './tenancy/contracts';
import { UpstreamClient } from './upstream/client';
import { Executor } from './upstream/executor';

export interface AppDeps {
  config: GatewayConfig;
  logger: Logger;
  metrics: Metrics;
  tenancy: Tenancy;
  cache: ResponseCache;
  /** Serves GET /v1/gateway/spend (admin only). */
  spendReport?: (query: Record<string, string | undefined>) => Promise<unknown>;
  /** Redis reachability for /ready and the status endpoint; undefined when Redis is not configured. */
  redisUp?: () => boolean;
  client?: UpstreamClient;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export interface Gateway {
  app: express.Express;
  ctx: GatewayContext;
  /** Flags the gateway as draining: /ready answers 503 and new inference requests are refused. */
  startDraining(): void;
  /** Requests in flight right now. */
  inflight(): number;
  close(): Promise<void>;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** True when a path has dot segments, encoded or not, or encoded slashes/backslashes an upstream might decode into them. */
export function escapesPrefix(path: string): boolean {
  if (/%(2f|5c)/i.test(path)) return true;
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return true;
  }
  return decoded.split(/[/\\]/).some((seg) => seg === '.' || seg === '..');
}

const CIRCUIT_GAUGE = { closed: 0, 'half-open': 1, open: 2 } as const;

export function createApp(deps: AppDeps): Gateway {
  const { config, logger, metrics } = deps;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const client = deps.client ?? new UpstreamClient(config.providers);
  const cb = config.routing.circuit_breaker;
  const breakers = new CircuitBreakers(
    { consecutiveFailures: cb.consecutive_failures, errorRateThreshold: cb.error_rate_threshold, windowMs: cb.window_ms, minRequests: cb.min_requests, cooldownMs: cb.cooldown_ms },
    now,
    (provider, model, from, to) => {
      metrics.circuitTransitions.inc({ provider, model, from, to });
      metrics.circuitState.set({ provider, model }, CIRCUIT_GAUGE[to]);
      logger.warn({ provider, model, from, to }, 'circuit breaker transition');
    },
  );
  const stats = new StatsTracker(config.routing.ewma_alpha, now);
  const catalog = buildCatalog(config);
  let draining = false;
  let inflight = 0;
  const executor = new Executor({ config, client, breakers, stats, metrics, admitProvider: (p) => deps.tenancy.admitProvider(p), now, random, sleep: deps.sleep });
  const ctx: GatewayContext = { config, logger, metrics, catalog, breakers, stats, executor, tenancy: deps.tenancy, cache: deps.cache, now, random, isDraining: () => draining };

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  // Request id, timing, one log line and the request metrics per request.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = requestId;
    res.locals.startedAt = now();
    res.setHeader('x-request-id', requestId);
    if (draining) res.setHeader('connection', 'close');
    inflight++;
    metrics.inflight.inc();
    res.once('close', () => {
      inflight--;
      metrics.inflight.dec();
      const l = res.locals;
      const seconds = (now() - l.startedAt) / 1000;
      if (l.endpoint) {
        const status = res.statusCode;
        metrics.requests.inc({ endpoint: l.endpoint, provider: l.provider ?? 'none', model: l.model ?? 'unknown', team: l.principal?.team ?? 'unauthenticated', project: l.principal?.project ?? 'unauthenticated', status_class: statusClass(status) });
        metrics.requestDuration.observe({ endpoint: l.endpoint, provider: l.provider ?? 'none', model: l.model ?? 'unknown', stream: l.stream ? 'true' : 'false' }, seconds);
      }
      logger.info({
        request_id: requestId,
        method: req.method,
        path: req.path.length > 200 ? `${req.path.slice(0, 200)}...` : req.path,
        status: res.statusCode,
        duration_ms: Math.round(seconds * 1e4) / 10,
        endpoint: l.endpoint,
        model: l.model,
        provider: l.provider,
        attempts: l.attempts,
        stream: l.stream,
        stream_outcome: l.streamOutcome,
        team: l.principal?.team,
        project: l.principal?.project,
        key: l.principal?.keyName,
        cost_usd: l.costUsd,
        error_code: l.errorCode,
        client_gone: !res.writableFinished || undefined,
      });
    });
    next();
  });

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/ready', (_req, res) => {
    const redis = deps.redisUp ? (deps.redisUp() ? 'up' : 'down (serving with in-memory fallbacks)') : 'not configured';
    res.status(draining ? 503 : 200).json({ status: draining ? 'draining' : 'ready', providers: config.providers.length, redis });
  });

  const body = jsonBody(config.server.body_limit_bytes);
  const wrap = (fn: (req: Request, res: Response) => Promise<void> | void) => (req: Request, res: Response, next: NextFunction) => {
    Promise.resolve()
      .then(() => fn(req, res))
      .catch(next);
  };
  // Authenticate before reading the body: an unauthenticated client never costs a parse.
  const authenticate = (req: Request, res: Response, next: NextFunction) => {
    try {
      res.locals.principal = deps.tenancy.authenticate(req.headers.authorization);
      next();
    } catch (err) {
      next(err);
    }
  };
  const admin = (req: Request, _res: Response, next: NextFunction) => {
    next(deps.tenancy.isAdmin(req.headers.authorization) ? undefined : forbidden('This endpoint needs a gateway admin key.', 'admin_key_required'));
  };

  // Tagged first, so requests refused before the handler (auth, body) are counted under their endpoint too.
  const tag = (endpoint: Endpoint) => (_req: Request, res: Response, next: NextFunction) => {
    res.locals.endpoint = endpoint;
    next();
  };
  app.post('/v1/chat/completions', tag('chat'), authenticate, body, wrap(inferenceHandler(ctx, 'chat')));
  app.post('/v1/completions', tag('completion'), authenticate, body, wrap(inferenceHandler(ctx, 'completion')));
  app.post('/v1/embeddings', tag('embedding'), authenticate, body, wrap(inferenceHandler(ctx, 'embedding')));

  app.get('/v1/models', authenticate, (_req, res) => {
    res.json({ object: 'list', data: catalog.list().map((m) => ({ id: m.id, object: 'model', created: 0, owned_by: m.ownedBy })) });
  });
  app.get('/v1/models/:model', authenticate, (req, res, next) => {
    const m = catalog.list().find((x) => x.id === req.params.model);
    if (!m) return next(new GatewayError(404, 'invalid_request_error', 'model_not_found', `The model "${String(req.params.model).slice(0, 256)}" does not exist or is not served by this gateway.`, {}, 'model'));
    res.json({ id: m.id, object: 'model', created: 0, owned_by: m.ownedBy });
  });

  app.get('/v1/gateway/providers', admin, (_req, res) => {
    const providers = config.providers.map((p) => ({
      name: p.name,
      type: p.type,
      models: p.models.map((m) => m.name).concat(Object.entries(config.models).filter(([, r]) => r.targets?.some((t) => t.provider === p.name)).map(([alias]) => alias)).filter((v, i, a) => a.indexOf(v) === i).map((model) => {
        const s = stats.get(p.name, model);
        const circuit = breakers.get(p.name, model);
        return {
          model,
          circuit: circuit.name,
          retry_in_ms: breakers.retryInMs(p.name, model),
          healthy: circuit.name !== 'open',
          latency_ms: { ttfb: s.ttfbMs === undefined ? null : Math.round(s.ttfbMs * 10) / 10, total: s.totalMs === undefined ? null : Math.round(s.totalMs * 10) / 10 },
          error_rate: Math.round(s.errorRate * 1000) / 1000,
          samples: s.samples,
        };
      }),
    }));
    res.json({ object: 'list', strategy: config.routing.strategy, redis: deps.redisUp ? (deps.redisUp() ? 'up' : 'down') : 'not configured', data: providers });
  });
  app.get('/v1/gateway/spend', admin, wrap(async (req, res) => {
    if (!deps.spendReport) throw notFound('Spend reporting is not enabled.', 'spend_unavailable');
    res.json(await deps.spendReport(req.query as Record<string, string | undefined>));
  }));

  // Every other /v1 endpoint passes through untouched to the first OpenAI-type provider.
  const passthrough = config.providers.find((p) => p.type === 'openai');
  if (passthrough) {
    const proxy = createProxyMiddleware<Request, Response>({
      target: passthrough.base_url,
      changeOrigin: true,
      xfwd: false,
      proxyTimeout: passthrough.timeout_ms,
      on: {
        proxyReq: (proxyReq) => {
          if (passthrough.api_key) proxyReq.setHeader('authorization', `Bearer ${passthrough.api_key}`);
          else proxyReq.removeHeader('authorization');
        },
        proxyRes: (proxyRes, _req, res) => {
          const r = res as Response;
          r.locals.provider = passthrough.name;
          // 401/403 is about the gateway's provider key: its body may echo that key, and it is not the client's fault.
          if (proxyRes.statusCode === 401 || proxyRes.statusCode === 403) {
            proxyRes.resume();
            const e = upstreamUnavailable(`The provider "${passthrough.name}" rejected the gateway's provider credentials. This is a gateway configuration problem, not your key.`, 'upstream_auth_failed');
            r.status(e.status).json(e.toBody());
          }
        },
        error: (_err, _req, res) => {
          const r = res as Response;
          if (typeof r.status !== 'function' || r.headersSent) {
            (res as { destroy?: () => void }).destroy?.();
            return;
          }
          const e = upstreamUnavailable(`The provider "${passthrough.name}" could not be reached for this pass-through request.`);
          r.status(e.status).json(e.toBody());
        },
      },
    });
    app.use('/v1', authenticate, (req, _res, next) => {
      if (req.method === 'GET' && req.path.startsWith('/gateway')) return next();
      // Never forward a path that could climb out of the provider's /v1 (with the gateway's provider key).
      if (escapesPrefix(req.path)) return next(notFound(`Unknown endpoint: ${req.method} ${(req.baseUrl + req.path).slice(0, 200)}`, 'unknown_url'));
      proxy(req, _res, next);
    });
  }

  app.use((req, _res, next) => next(notFound(`Unknown endpoint: ${req.method} ${req.path.slice(0, 200)}`, 'unknown_url')));

  // The one place errors become responses.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = toGatewayError(err);
    if (!(err instanceof GatewayError)) logger.error({ request_id: res.locals.requestId, err: { message: (err as Error)?.message, stack: (err as Error)?.stack } }, 'unhandled error');
    res.locals.errorCode = e.code;
    if (res.headersSent) {
      if (!res.writableEnded) res.end();
      return;
    }
    for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
    res.status(e.status).json(e.toBody());
  });

  return {
    app,
    ctx,
    startDraining: () => {
      draining = true;
    },
    inflight: () => inflight,
    close: () => client.close(),
  };
}
