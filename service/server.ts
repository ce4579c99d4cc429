/**
 * Builds a whole gateway process from a validated config: Redis, tenancy, cache, the app,
 * the HTTP and metrics servers, and the graceful shutdown. main.ts, the demo and the tests
 * all start gateways through here.
 */
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino, { Logger } from 'pino';
import { createApp, Gateway } from './app';
import { createResponseCache } from './cache/cache';
import type { GatewayConfig } from './config/schema';
import { createMetrics, Metrics } from './metrics/metrics';
import { createCacheRedisClient, createRedisClient, redisReady, redisStartupWait } from './redis/client';
import { stdoutLineBatch } from './telemetry/log-batch';
import { tracingSettings } from './telemetry/settings';
import { startTracing } from './telemetry/tracing';
import { MemoryObjectRegistry, RedisObjectRegistry } from './tenancy/objects';
import { createTenancy } from './tenancy/tenancy';
import { openStore } from './store/store';
import { adminRouter } from './admin/routes';

export interface RunningGateway {
  url: string;
  metricsUrl: string;
  gateway: Gateway;
  metrics: Metrics;
  logger: Logger;
  /** Stop accepting, drain in-flight requests and streams (up to the grace period), flush spend, close Redis. */
  shutdown(): Promise<void>;
}

const listen = (server: Server, port: number, host: string) =>
  new Promise<AddressInfo>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });

const urlOf = (a: AddressInfo) => `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;

type StartOptions = { logger?: Logger; env?: Record<string, string | undefined> };

/** How long a log line may wait for others to be written with it (telemetry/log-batch.ts). */
const LOG_BATCH_MS = 10;

/** Asynchronous stdout, the lines of up to LOG_BATCH_MS written together (telemetry/log-batch.ts); shutdown and exit flush what is left. */
function createLogger(config: GatewayConfig): Logger {
  return pino(
    { level: config.server.log_level, base: { service: 'ai-gateway' }, redact: { paths: ['*.authorization', '*.api_key', '*.password'], censor: '[redacted]' } },
    stdoutLineBatch(LOG_BATCH_MS),
  );
}

/** Everything a gateway process holds: Redis, the store, tenancy, the cache, tracing and the app. */
async function assemble(config: GatewayConfig, logger: Logger, env: Record<string, string | undefined>) {
  const metrics = createMetrics();
  const tracing = startTracing(tracingSettings(env, config.telemetry), logger);
  const redis = createRedisClient(config, { metrics, logger });
  // The store (keys and teams at runtime, the ledger, the audit log) when DATABASE_URL, store.postgres_url or store.embedded says so.
  const store = await openStore(config, { env, redis, registry: metrics.registry, logger });
  const tenancy = createTenancy(config, { redis, metrics, logger, directory: store?.registry, sink: store?.ledger });
  // The cache on its own Redis when configured (an LRU server that cannot evict limits, budgets or spend).
  const cacheRedis = createCacheRedisClient(config, { logger, metrics });
  const cache = createResponseCache(config, { redis: cacheRedis ?? redis, metrics });
  const objects = redis ? new RedisObjectRegistry(redis, Date.now, (operation) => metrics.redisErrors.inc({ operation })) : new MemoryObjectRegistry();
  const gateway = createApp({
    config,
    logger,
    metrics,
    tenancy,
    cache,
    objects,
    admin: store ? adminRouter({ config, store, adminId: (a) => tenancy.adminId(a), now: Date.now, logger }) : undefined,
    spendReport: (q) => tenancy.spendReport(q),
    redisUp: redis ? () => redisReady(redis) : undefined,
    redisStarting: redis ? redisStartupWait(redis) : undefined,
    tracing,
  });
  return { metrics, tracing, redis, store, tenancy, cacheRedis, gateway };
}

type Parts = Awaited<ReturnType<typeof assemble>>;

/** The gateway's HTTP server and the metrics server. */
function createServers(config: GatewayConfig, { gateway, metrics }: Parts): { server: Server; metricsServer: Server } {
  // Node enforces headersTimeout/requestTimeout only when it sweeps its connections, every
  // connectionsCheckingInterval (30 s by default): sweep often enough that a slowloris client
  // is cut off close to headers_timeout_ms, not up to 30 s later.
  const server = createServer(
    {
      headersTimeout: config.server.headers_timeout_ms,
      requestTimeout: config.routing.timeout_ms + 30_000,
      keepAliveTimeout: 65_000,
      connectionsCheckingInterval: Math.min(1_000, config.server.headers_timeout_ms),
    },
    gateway.handle,
  );
  server.maxHeadersCount = 100;
  const metricsServer = createServer((req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; metrics are at /metrics\n');
  });
  return { server, metricsServer };
}

/** Stops accepting, waits for in-flight requests and streams (up to the grace period), then flushes and closes every part. */
async function drainAndClose(config: GatewayConfig, logger: Logger, parts: Parts, server: Server, metricsServer: Server): Promise<void> {
  const { gateway, tenancy, store, tracing, redis, cacheRedis } = parts;
  logger.info({ inflight: gateway.inflight() }, 'shutting down: draining in-flight requests');
  gateway.startDraining();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const deadline = Date.now() + config.server.shutdown_grace_ms;
  while (gateway.inflight() > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    server.closeIdleConnections();
  }
  if (gateway.inflight() > 0) logger.warn({ inflight: gateway.inflight() }, 'grace period over: closing remaining connections');
  server.closeAllConnections();
  await closed;
  await gateway.settleBackground().catch((err: Error) => logger.error({ err: err.message }, 'background settlement failed'));
  await tenancy.flush().catch((err: Error) => logger.error({ err: err.message }, 'spend flush failed'));
  tenancy.close();
  await store?.close().catch((err: Error) => logger.error({ err: err.message }, 'store close failed'));
  await gateway.close();
  await tracing?.shutdown().catch((err: Error) => logger.warn({ err: err.message }, 'trace export on shutdown failed'));
  if (redis) await redis.quit().catch(() => redis.disconnect());
  if (cacheRedis) await cacheRedis.quit().catch(() => cacheRedis.disconnect());
  await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
  metricsServer.closeAllConnections();
  logger.info('shutdown complete');
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
}

/** `env`: the process environment, for the standard OTEL_* variables (main.ts passes process.env; tests and the demo pass none). */
export async function startGateway(config: GatewayConfig, opts: StartOptions = {}): Promise<RunningGateway> {
  const logger = opts.logger ?? createLogger(config);
  const parts = await assemble(config, logger, opts.env ?? {});
  const { server, metricsServer } = createServers(config, parts);
  const addr = await listen(server, config.server.port, config.server.host);
  const maddr = await listen(metricsServer, config.server.metrics_port, config.server.metrics_host ?? config.server.host);
  logger.info(
    { url: urlOf(addr), metrics: `${urlOf(maddr)}/metrics`, providers: config.providers.map((p) => p.name), redis: parts.redis ? 'configured' : 'none', auth: config.auth.mode },
    'gateway listening',
  );
  let shuttingDown: Promise<void> | undefined;
  const shutdown = () => (shuttingDown ??= drainAndClose(config, logger, parts, server, metricsServer));
  return { url: urlOf(addr), metricsUrl: `${urlOf(maddr)}/metrics`, gateway: parts.gateway, metrics: parts.metrics, logger, shutdown };
}
