/**
 * createApp(deps): wires middleware and routes. Takes its stores, clock, randomness and
 * upstream client as parameters, so tests build their own; main.ts is the only place that
 * reads the environment.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import express from 'express';
import type { Logger } from 'pino';
import type { GatewayConfig } from './config/schema';
import type { GatewayContext } from './http/context';
import { forbidden, GatewayError, notFound } from './core/errors';
import { routeKey, targetPath } from './core/target';
import { BackgroundResponses } from './http/background';
import { inboundRoutes, InboundRoutes } from './http/routes';
import { passthroughRoute } from './http/passthrough';
import { recordOf, RequestTracker } from './http/request-context';
import { sendError } from './http/respond';
import type { Metrics } from './metrics/metrics';
import { buildCatalog } from './routing/catalog';
import { CircuitBreakers } from './routing/circuit-breaker';
import { StatsTracker } from './routing/provider-stats';
import type { Tracing } from './telemetry/trace-types';
import type { ResponseCache, Tenancy } from './tenancy/contracts';
import { MemoryObjectRegistry, ObjectRegistry } from './tenancy/objects';
import { UpstreamClient } from './upstream/client';
import { Executor } from './upstream/executor';
import { registerUi } from './ui/register';

export interface AppDeps {
  config: GatewayConfig;
  logger: Logger;
  metrics: Metrics;
  tenancy: Tenancy;
  cache: ResponseCache;
  /** Owners of provider objects (stored responses, files...); in memory when not given. */
  objects?: ObjectRegistry;
  /** The admin API of the store (service/admin: keys, teams, audit, the ledger's spend report); absent when the store is off. */
  admin?: express.Router;
  /** Serves GET /v1/gateway/spend (admin only). */
  spendReport?: (query: Record<string, string | undefined>) => Promise<unknown>;
  /** Redis reachability for /ready and the status endpoint; undefined when Redis is not configured. */
  redisUp?: () => boolean;
  /** True while a starting replica waits for its first Redis connection (redisStartupWait): /ready answers 503. */
  redisStarting?: () => boolean;
  /** Server and upstream spans; undefined when tracing is off. */
  tracing?: Tracing;
  client?: UpstreamClient;
  /** Where HTTPS_PROXY / HTTP_PROXY / NO_PROXY are read from (default: process.env). */
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export interface Gateway {
  /**
   * The server's request handler: POST to the three inference paths is served directly on
   * node:http (the hot path), everything else by the Express app.
   */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Every route, inference included (for paths the fast path does not match exactly, e.g. a trailing slash). */
  app: express.Express;
  ctx: GatewayContext;
  /**
   * Flags the gateway as draining: /ready answers 503 (the endpoint leaves the Service) and every
   * response carries connection: close. Requests that still arrive are served, not refused: a load
   * balancer keeps sending some until the endpoint removal reaches it.
   */
  startDraining(): void;
  /** Requests in flight right now. */
  inflight(): number;
  /** Settles the background responses still open (one last poll each, else on their estimate); before the spend is flushed. */
  settleBackground(): Promise<void>;
  close(): Promise<void>;
}

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

type Middleware = (req: Request, res: Response, next: NextFunction) => void;

/** What createApp builds from its deps: the request context and the pieces its routes read. */
interface Wiring {
  ctx: GatewayContext;
  client: UpstreamClient;
  tracker: RequestTracker;
}

function createBreakers(config: GatewayConfig, metrics: Metrics, logger: Logger, now: () => number): CircuitBreakers {
  const cb = config.routing.circuit_breaker;
  return new CircuitBreakers(
    { consecutiveFailures: cb.consecutive_failures, errorRateThreshold: cb.error_rate_threshold, windowMs: cb.window_ms, minRequests: cb.min_requests, cooldownMs: cb.cooldown_ms },
    now,
    (provider, model, from, to) => {
      metrics.circuitTransitions.inc({ provider, model, from, to });
      metrics.circuitState.set({ provider, model }, CIRCUIT_GAUGE[to]);
      logger.warn({ provider, model, from, to }, 'circuit breaker transition');
    },
  );
}

function wire(deps: AppDeps): Wiring {
  const { config, logger, metrics } = deps;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const client = deps.client ?? new UpstreamClient(config.providers, deps.env ?? process.env);
  const breakers = createBreakers(config, metrics, logger, now);
  const stats = new StatsTracker(config.routing.ewma_alpha, now);
  const catalog = buildCatalog(config);
  const tracker = new RequestTracker(logger, metrics, now, deps.tracing);
  const executor = new Executor({ config, client, breakers, stats, metrics, admitProvider: (p) => deps.tenancy.admitProvider(p), now, random, sleep: deps.sleep });
  const background = new BackgroundResponses(client, { firstPollMs: config.routing.background_poll_ms, now });
  const ctx: GatewayContext = {
    config,
    logger,
    metrics,
    catalog,
    breakers,
    stats,
    executor,
    tenancy: deps.tenancy,
    cache: deps.cache,
    objects: deps.objects ?? new MemoryObjectRegistry(now),
    background,
    now,
    random,
  };
  return { ctx, client, tracker };
}

const wrap = (fn: (req: Request, res: Response) => Promise<void> | void) => (req: Request, res: Response, next: NextFunction) => {
  Promise.resolve()
    .then(() => fn(req, res))
    .catch(next);
};

/** Authenticate before reading the body: an unauthenticated client never costs a parse. */
function authenticator(tenancy: Tenancy): Middleware {
  return (req, res, next) => {
    try {
      recordOf(res).principal = tenancy.authenticate(req.headers.authorization);
      next();
    } catch (err) {
      next(err);
    }
  };
}

function adminOnly(tenancy: Tenancy): Middleware {
  return (req, _res, next) => {
    next(tenancy.isAdmin(req.headers.authorization) ? undefined : forbidden('This endpoint needs a gateway admin key.', 'admin_key_required'));
  };
}

function probeRoutes(app: express.Express, deps: AppDeps, tracker: RequestTracker): void {
  app.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/ready', (_req, res) => {
    const providers = deps.config.providers.length;
    const redis = deps.redisUp ? (deps.redisUp() ? 'up' : 'down (serving with in-memory fallbacks)') : 'not configured';
    if (tracker.draining) return void res.status(503).json({ status: 'draining', providers, redis });
    if (deps.redisStarting?.()) return void res.status(503).json({ status: 'starting', providers, redis: 'down (waiting for the first connection)' });
    res.json({ status: 'ready', providers, redis });
  });
}

/** The inbound APIs: one table, read by the Express app (any path form) and by the fast path (exact paths). */
function registerInbound(app: express.Express, inbound: InboundRoutes): void {
  for (const [path, route] of inbound) app.post(path, route);
}

function modelRoutes(app: express.Express, ctx: GatewayContext, authenticate: Middleware): void {
  const { catalog } = ctx;
  app.get('/v1/models', authenticate, (_req, res) => {
    res.json({ object: 'list', data: catalog.list().map((m) => ({ id: m.id, object: 'model', created: 0, owned_by: m.ownedBy })) });
  });
  app.get('/v1/models/:model', authenticate, (req, res, next) => {
    const m = catalog.list().find((x) => x.id === req.params.model);
    if (!m)
      return next(
        new GatewayError(404, 'invalid_request_error', 'model_not_found', `The model "${String(req.params.model).slice(0, 256)}" does not exist or is not served by this gateway.`, {}, 'model'),
      );
    res.json({ id: m.id, object: 'model', created: 0, owned_by: m.ownedBy });
  });
}

/** GET /v1/gateway/providers: each provider's models (its own and the aliases that target it) with circuit and latency. */
function providerStatus(ctx: GatewayContext) {
  const { config, stats, breakers } = ctx;
  return config.providers.map((p) => ({
    name: p.name,
    type: p.type,
    models: p.models
      .map((m) => m.name)
      .concat(
        Object.entries(config.models)
          .filter(([, r]) => r.targets?.some((t) => t.provider === p.name))
          .map(([alias]) => alias),
      )
      .filter((v, i, a) => a.indexOf(v) === i)
      .map((model) => {
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
}

function gatewayRoutes(app: express.Express, deps: AppDeps, ctx: GatewayContext, admin: Middleware): void {
  app.get('/v1/gateway/providers', admin, (_req, res) => {
    res.json({ object: 'list', strategy: deps.config.routing.strategy, redis: deps.redisUp ? (deps.redisUp() ? 'up' : 'down') : 'not configured', data: providerStatus(ctx) });
  });
  app.get(
    '/v1/gateway/spend',
    admin,
    wrap(async (req, res) => {
      if (!deps.spendReport) throw notFound('Spend reporting is not enabled.', 'spend_unavailable');
      res.json(await deps.spendReport(req.query as Record<string, string | undefined>));
    }),
  );
  // The rest of /v1/gateway is the admin API's too: an admin key on an unknown path gets 404, not "invalid API key".
  app.use('/v1/gateway', admin, (req, _res, next) => next(notFound(`Unknown admin endpoint: ${req.method} ${(req.baseUrl + req.path).slice(0, 200)}`, 'unknown_url')));
}

/** Every other /v1 path: the pass-through allowlist and stored responses; anything else is 404 before any provider sees it. */
function passthroughRoutes(app: express.Express, ctx: GatewayContext, client: UpstreamClient, authenticate: Middleware): void {
  const passthrough = passthroughRoute(ctx, client);
  app.use('/v1', authenticate, (req, res, next) => {
    // Never forward a path that could climb out of the provider's /v1 (with the gateway's provider key).
    if (escapesPrefix(req.path)) return next(notFound(`Unknown endpoint: ${req.method} ${(req.baseUrl + req.path).slice(0, 200)}`, 'unknown_url'));
    const q = req.originalUrl.indexOf('?');
    passthrough(req, res, q === -1 ? '' : req.originalUrl.slice(q)).catch(next);
  });
}

/** The server's handler: POST to an inference path straight to its route on node:http, the rest to Express. */
function fastPath(inference: InboundRoutes, tracker: RequestTracker, app: express.Express): Gateway['handle'] {
  return (req, res) => {
    if (req.method === 'POST') {
      // Every form of an inbound path (absolute-form, upper case, a trailing slash) is served here,
      // tracked and traced under the table's own path.
      // The exact path (the common case) is looked up first, without folding it.
      const path = targetPath(req.url!);
      const route = inference.get(path) ?? inference.get(routeKey(path));
      if (route) {
        tracker.start(req, res, route.path);
        void route(req, res);
        return;
      }
    }
    void app(req, res);
  };
}

export function createApp(deps: AppDeps): Gateway {
  const { ctx, client, tracker } = wire(deps);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  // Request id, timing, one log line and the request metrics per request.
  app.use((req: Request, res: Response, next: NextFunction) => {
    tracker.start(req, res);
    next();
  });
  probeRoutes(app, deps, tracker);
  const authenticate = authenticator(deps.tenancy);
  const inference = inboundRoutes(ctx);
  registerInbound(app, inference);
  modelRoutes(app, ctx, authenticate);
  if (deps.admin) app.use(deps.admin);
  gatewayRoutes(app, deps, ctx, adminOnly(deps.tenancy));
  registerUi(app, { config: deps.config, isAdmin: (h) => deps.tenancy.isAdmin(h), now: ctx.now });
  passthroughRoutes(app, ctx, client, authenticate);
  app.use((req, _res, next) => next(notFound(`Unknown endpoint: ${req.method} ${req.path.slice(0, 200)}`, 'unknown_url')));
  // The one place errors become responses.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => sendError(deps.logger, res, err));

  return {
    handle: fastPath(inference, tracker, app),
    app,
    ctx,
    startDraining: () => {
      tracker.draining = true;
    },
    inflight: () => tracker.inflight,
    settleBackground: () => ctx.background.stop(),
    close: () => client.close(),
  };
}
