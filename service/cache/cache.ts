/**
 * Response cache for non-streaming requests that are safe to cache.
 *
 * Cacheable when `cache.enabled`, the request is not streaming, no `Cache-Control: no-cache`
 * (or `no-store`) is sent, `x-gateway-cache` is not "false", and either `temperature` is 0 or
 * the client opts in with `x-gateway-cache: true`.
 *
 * Key: cache:{t:<team>}:sha256 over (format version, team, model, normalized body); the team hash tag keeps it in the team's Redis Cluster slot. Normalizing sorts object
 * keys at every depth (so key order does not matter), drops `model` (given separately) and the
 * fields that do not change the output: `stream`, `stream_options`, `user`, `metadata`,
 * `store`. Everything else, including `n`, `seed`, `tools` and message order, is part of the key.
 * Teams never share entries.
 *
 * Store: Redis (`SET key body EX ttl`); when Redis is unreachable the cache is bypassed,
 * never an error. Without a Redis config a bounded in-memory store serves the demo.
 */
import type Redis from 'ioredis';
import { createHash } from 'node:crypto';
import type { GatewayConfig } from '../config/schema';
import type { Metrics } from '../metrics/metrics';
import { redisReady } from '../redis/client';
import type { Principal, ResponseCache } from '../tenancy/contracts';

const KEY_VERSION = 'v1';
export const IGNORED_FIELDS: ReadonlySet<string> = new Set(['model', 'stream', 'stream_options', 'user', 'metadata', 'store']);
/** Responses larger than this are not stored. */
export const MAX_ENTRY_BYTES = 1_048_576;
const MEMORY_ENTRIES = 1000;

type Headers = Record<string, string | string[] | undefined>;

const header = (headers: Headers, name: string): string => {
  const v = headers[name];
  return (Array.isArray(v) ? v.join(',') : (v ?? '')).toLowerCase();
};

/** Sorted-keys copy of a JSON value. */
export function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = canonical(v);
    }
    return out;
  }
  return value;
}

export function normalizeRequest(body: Record<string, unknown>): unknown {
  const kept: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) if (!IGNORED_FIELDS.has(k)) kept[k] = v;
  return canonical(kept);
}

export type CacheDecision = 'cacheable' | 'streaming' | 'no-cache' | 'not-deterministic';

/** Whether a request may be served from / stored in the cache (pure). */
export function cacheDecision(body: Record<string, unknown>, headers: Headers): CacheDecision {
  if (body.stream === true) return 'streaming';
  if (/\bno-(cache|store)\b/.test(header(headers, 'cache-control'))) return 'no-cache';
  const optIn = header(headers, 'x-gateway-cache').trim();
  if (optIn === 'false') return 'no-cache';
  if (optIn === 'true' || body.temperature === 0) return 'cacheable';
  return 'not-deterministic';
}

export function cacheKey(team: string, model: string, body: Record<string, unknown>): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([KEY_VERSION, team, model, normalizeRequest(body)]))
    .digest('hex');
  // The team's hash tag: every key a request touches lives in its team's Redis Cluster slot.
  return `cache:{t:${team}}:${digest}`;
}

export interface CacheStore {
  get(key: string): Promise<string | null>;
  set(key: string, body: string, ttlSeconds: number): Promise<void>;
}

/** Bounded in-memory store (oldest entry evicted first), for running without Redis. */
export class MemoryCacheStore implements CacheStore {
  private readonly entries = new Map<string, { body: string; expires: number }>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly max = MEMORY_ENTRIES,
  ) {}

  async get(key: string): Promise<string | null> {
    const e = this.entries.get(key);
    if (!e) return null;
    if (e.expires <= this.now()) {
      this.entries.delete(key);
      return null;
    }
    return e.body;
  }

  async set(key: string, body: string, ttlSeconds: number): Promise<void> {
    this.entries.delete(key);
    this.entries.set(key, { body, expires: this.now() + ttlSeconds * 1000 });
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
  }
}

export class RedisCacheStore implements CacheStore {
  constructor(private readonly redis: Redis) {}

  async get(key: string): Promise<string | null> {
    if (!redisReady(this.redis)) throw new Error('redis not ready');
    return this.redis.get(key);
  }

  async set(key: string, body: string, ttlSeconds: number): Promise<void> {
    if (!redisReady(this.redis)) return; // bypass: nothing to store into
    await this.redis.set(key, body, 'EX', ttlSeconds);
  }
}

export function createResponseCache(config: Pick<GatewayConfig, 'cache'>, deps: { redis: Redis | null; metrics: Metrics; now?: () => number }): ResponseCache {
  const { enabled, ttl_seconds } = config.cache;
  const store: CacheStore = deps.redis ? new RedisCacheStore(deps.redis) : new MemoryCacheStore(deps.now);
  const count = (result: 'hit' | 'miss' | 'bypass' | 'error') => deps.metrics.cacheRequests.inc({ result });
  return {
    keyFor(principal: Principal, model: string, body: Record<string, unknown>, headers: Headers) {
      if (!enabled) return null;
      if (cacheDecision(body, headers) !== 'cacheable') {
        count('bypass');
        return null;
      }
      return cacheKey(principal.team, model, body);
    },
    async get(key) {
      try {
        const body = await store.get(key);
        count(body === null ? 'miss' : 'hit');
        return body;
      } catch {
        count('error');
        return null;
      }
    },
    async set(key, body) {
      if (Buffer.byteLength(body) > MAX_ENTRY_BYTES) return;
      await store.set(key, body, ttl_seconds).catch(() => {
        deps.metrics.redisErrors.inc({ operation: 'cache_set' });
      });
    },
  };
}
