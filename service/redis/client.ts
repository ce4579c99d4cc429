/**
 * The gateway's one Redis connection (ioredis), built from `config.redis`.
 *
 * Failure model: Redis is optional at runtime. Every command is bounded by
 * `command_timeout_ms`; while the connection is down commands fail at once (no offline
 * queue) and callers fall back (memory rate limits, buffered spend, cache bypass). The client
 * reconnects forever with capped backoff, never throws from an event, logs once per
 * up/down transition and keeps `aigw_redis_up` current.
 *
 * Redis Cluster (`redis.cluster: true`): an ioredis Cluster client seeded by url/host, which
 * discovers the other masters, routes each command by its key's slot and follows failovers.
 * It is used through the same `Redis` type: every command the gateway sends (single-key
 * commands, and scripts whose keys share one hash tag) is valid on a cluster.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import Redis, { Cluster, ClusterNode, ClusterOptions, RedisOptions } from 'ioredis';
import { ConfigError, GatewayConfig } from '../config/schema';
import type { Metrics } from '../metrics/metrics';

/** The subset of a pino logger used here (pino loggers fit). */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export const silentLogger: Logger = { info: () => {}, warn: () => {} };

export type RedisConfig = NonNullable<GatewayConfig['redis']>;

/** Backoff between reconnect attempts: 50 ms doubling, capped at 2 s (pure, for tests). */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(attempt, 10), 2000);
}

/** True when the connection uses TLS: a rediss:// url, or a redis.tls block. */
export const usesTls = (cfg: RedisConfig): boolean => !!cfg.tls || /^rediss:\/\//i.test(cfg.url ?? '');

/** Node TLS options from `redis.tls` (the CA file is read here, at start); undefined without TLS. */
export function tlsOptions(cfg: RedisConfig, readFile: (file: string) => Buffer = readFileSync): ConnectionOptions | undefined {
  if (!usesTls(cfg)) return undefined;
  const t = cfg.tls;
  let ca: Buffer | undefined;
  if (t?.ca_file) {
    try {
      ca = readFile(t.ca_file);
    } catch (err) {
      throw new ConfigError([`redis.tls.ca_file: cannot read ${t.ca_file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
    }
  }
  return { rejectUnauthorized: t?.reject_unauthorized ?? true, ...(ca ? { ca } : {}), ...(t?.servername ? { servername: t.servername } : {}) };
}

export function redisOptions(cfg: RedisConfig, readFile?: (file: string) => Buffer): RedisOptions {
  const tls = tlsOptions(cfg, readFile);
  return {
    // Sentinel: ioredis asks the sentinels for the master of `name` and follows failovers.
    ...(cfg.sentinels ? { sentinels: cfg.sentinels.map((s) => ({ host: s.host, port: s.port })), name: cfg.sentinel_name } : cfg.url ? {} : { host: cfg.host, port: cfg.port }),
    ...(tls ? { tls } : {}),
    ...(cfg.password !== undefined ? { password: cfg.password } : {}),
    keyPrefix: cfg.key_prefix,
    commandTimeout: cfg.command_timeout_ms,
    connectTimeout: Math.max(1000, cfg.command_timeout_ms * 10),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    // Callers own retries (spend is re-sent idempotently), so nothing is resent behind their back.
    autoResendUnfulfilledCommands: false,
    // Commands issued in the same tick share one round trip (rate limits + budget read).
    enableAutoPipelining: true,
    retryStrategy: (times) => reconnectDelayMs(times),
  };
}

/** The cluster's seed node and credentials from url/host/port (a url's user and password go to every node). */
function clusterSeed(cfg: RedisConfig): { node: ClusterNode; auth: Pick<RedisOptions, 'username' | 'password'> } {
  if (!cfg.url) return { node: { host: cfg.host, port: cfg.port }, auth: {} };
  const u = new URL(cfg.url);
  const auth: Pick<RedisOptions, 'username' | 'password'> = {};
  if (u.username) auth.username = decodeURIComponent(u.username);
  if (u.password) auth.password = decodeURIComponent(u.password);
  return { node: { host: u.hostname, port: u.port ? Number(u.port) : 6379 }, auth };
}

/**
 * ioredis Cluster options (https://redis.github.io/ioredis/interfaces/ClusterOptions.html): the
 * per-node options go in `redisOptions`; keyPrefix, auto-pipelining and the offline queue are
 * the cluster's own. With TLS, node addresses are not resolved to IPs (`dnsLookup` keeps the
 * host name), so certificates of a managed cluster, issued for names, still verify.
 */
export function clusterOptions(cfg: RedisConfig, readFile?: (file: string) => Buffer): { nodes: ClusterNode[]; options: ClusterOptions } {
  // TLS from the url's scheme or the tls block; host and port come from the seed, per node.
  const { keyPrefix, enableAutoPipelining, enableOfflineQueue, retryStrategy, ...node } = redisOptions(cfg, readFile);
  delete node.host;
  delete node.port;
  const seed = clusterSeed(cfg);
  return {
    nodes: [seed.node],
    options: {
      redisOptions: { ...node, ...seed.auth, ...(cfg.password !== undefined ? { password: cfg.password } : {}) },
      keyPrefix,
      enableAutoPipelining,
      enableOfflineQueue,
      clusterRetryStrategy: retryStrategy,
      // A moved slot or a failover: retry soon, within the command timeout.
      retryDelayOnFailover: 50,
      retryDelayOnClusterDown: 50,
      slotsRefreshTimeout: Math.max(1000, cfg.command_timeout_ms * 10),
      ...(usesTls(cfg) ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) } : {}),
    },
  };
}

/** True when commands can be sent now (callers skip Redis rather than queue). */
export const redisReady = (redis: Redis | null | undefined): redis is Redis => !!redis && redis.status === 'ready';

/** How long a starting replica waits for its first Redis connection before it reports ready without one. */
export const REDIS_STARTUP_WAIT_MS = 10_000;

/**
 * Whether a starting replica is still waiting for its first Redis connection: true until the
 * client is first ready, or for at most `waitMs`. Until then /ready answers 503, so a new replica
 * in a rolling update takes no traffic while it could only admit from per-replica memory (the
 * other replicas count in Redis). After `waitMs` it serves on its fallbacks, as a replica that
 * lost Redis does: a Redis outage must not keep every restarted replica out of the Service.
 */
export function redisStartupWait(redis: Pick<Redis, 'status' | 'once'>, waitMs = REDIS_STARTUP_WAIT_MS, now: () => number = Date.now): () => boolean {
  const until = now() + waitMs;
  let seen = redis.status === 'ready';
  if (!seen) redis.once('ready', () => (seen = true));
  return () => !seen && now() < until;
}

/**
 * Connects to Redis (or returns null when the config has no `redis` block: the gateway then
 * runs on in-memory state, for a single replica or the demo).
 */
export function createRedisClient(config: GatewayConfig, deps: { metrics?: Metrics; logger?: Logger } = {}): Redis | null {
  return config.redis ? connectRedis(config.redis, 'redis', { ...deps, commands: deps.metrics?.redisCommands.labels('state') }) : null;
}

/**
 * The response cache's own connection when `cache.redis` is set, else null (the cache then shares the
 * main connection). It does not drive `aigw_redis_up`: a cache outage is a cache bypass, counted by
 * `aigw_cache_requests_total{result="error"}`.
 */
export function createCacheRedisClient(config: GatewayConfig, deps: { logger?: Logger; metrics?: Metrics } = {}): Redis | null {
  return config.cache.redis ? connectRedis(config.cache.redis, 'cache redis', { logger: deps.logger, commands: deps.metrics?.redisCommands.labels('cache') }) : null;
}

function connectRedis(cfg: RedisConfig, role: string, deps: { metrics?: Metrics; logger?: Logger; commands?: { inc(): void } }): Redis {
  const log = deps.logger ?? silentLogger;
  const options = cfg.cluster ? {} : redisOptions(cfg);
  // With sentinels, a URL still supplies the credentials (and db); its host is not used.
  const client = cfg.cluster ? newCluster(cfg) : cfg.url ? new Redis(cfg.url, options) : new Redis(options);
  let up: boolean | null = null;
  const mark = (next: boolean, detail?: string) => {
    deps.metrics?.redisUp.set(next ? 1 : 0);
    if (up === next) return;
    up = next;
    // Never log the URL: it may carry a password.
    if (next) log.info({ redis: 'up', role }, `${role} reachable`);
    else log.warn({ redis: 'down', role, reason: detail }, `${role} unreachable; falling back to per-replica memory limits, buffered spend and cache bypass`);
  };
  deps.metrics?.redisUp.set(0);
  if (deps.commands && cfg.cluster) {
    // A cluster sends (and pipelines) through its node connections: count there, on every node it finds.
    const counter = deps.commands;
    client.on('+node', (node: Redis) => countCommands(node, counter));
  } else if (deps.commands) countCommands(client, deps.commands);
  client.on('ready', () => mark(true));
  client.on('error', (err: Error) => mark(false, errorCode(err)));
  client.on('close', () => mark(false, 'connection closed'));
  client.on('end', () => mark(false, 'connection ended'));
  return client;
}

/** A Cluster client, typed as Redis: the gateway's commands are the same on both (see the header). */
function newCluster(cfg: RedisConfig): Redis {
  const { nodes, options } = clusterOptions(cfg);
  return new Cluster(nodes, options) as unknown as Redis;
}

/** Counts every command the client sends (pipelined ones too: a pipeline sends each through sendCommand). */
function countCommands(client: Redis, counter: { inc(): void }): void {
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
    counter.inc();
    return send(...args);
  }) as Redis['sendCommand'];
}

/** A short, credential-free description of a Redis error for logs. */
export function errorCode(err: unknown): string {
  const e = err as { code?: string; name?: string; message?: string };
  if (e?.code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|^ERR_TLS|^ERR_SSL/.test(e.code)) return `TLS: ${e.code} (check redis.tls.ca_file and redis.tls.servername)`;
  if (e?.code) return e.code;
  if (e?.message && /timed? ?out/i.test(e.message)) return 'timeout';
  return e?.name ?? 'error';
}
