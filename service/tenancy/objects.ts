/**
 * Who owns a provider object (a stored response, a file, a batch, a vector store...): its id
 * is recorded at creation against the creating team and provider, with the object's lifetime,
 * so other teams get 404 for it and calls about it go to the provider that holds it.
 *
 * Redis: `obj:<id>` -> "<team>\u0000<provider>" with EX = the object's lifetime, set only if
 * absent (an id is never re-assigned to another team). Without Redis (or while it is down)
 * a bounded in-memory map serves this replica; a lookup that cannot reach Redis and finds
 * nothing locally fails closed (503), it never guesses an owner.
 */
import type Redis from 'ioredis';
import { GatewayError, serviceUnavailable } from '../core/errors';
import { redisReady } from '../redis/client';

/** How long the gateway keeps the owner of a stored response: OpenAI keeps them 30 days. */
export const STORED_RESPONSE_TTL_SECONDS = 30 * 86400;

export interface ObjectOwner {
  team: string;
  provider: string;
}

export interface ObjectRegistry {
  /** Records a new object; resolves once recorded (or kept locally when Redis is unreachable). */
  record(id: string, owner: ObjectOwner, ttlSeconds: number): Promise<void>;
  /** The owner, or null when the id was never recorded (or expired). Throws 503 when it cannot tell. */
  lookup(id: string): Promise<ObjectOwner | null>;
  /** The owners of several ids in one round trip (Redis MGET), in order. Throws 503 when it cannot tell. */
  lookupMany(ids: readonly string[]): Promise<Array<ObjectOwner | null>>;
  /** Records several new objects of one owner in one round trip (a pipeline of SET NX). */
  recordMany(ids: readonly string[], owner: ObjectOwner, ttlSeconds: number): Promise<void>;
  forget(id: string): Promise<void>;
}

const MEMORY_ENTRIES = 100_000;
const SEP = '\u0000';

/** Bounded map with expiry (oldest first out), the store without Redis and this replica's fallback. */
export class MemoryObjectRegistry implements ObjectRegistry {
  private readonly entries = new Map<string, { owner: ObjectOwner; expires: number }>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly max = MEMORY_ENTRIES,
  ) {}

  async record(id: string, owner: ObjectOwner, ttlSeconds: number): Promise<void> {
    if (this.peek(id)) return;
    this.entries.set(id, { owner, expires: this.now() + ttlSeconds * 1000 });
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
  }

  peek(id: string): ObjectOwner | null {
    const e = this.entries.get(id);
    if (!e) return null;
    if (e.expires <= this.now()) {
      this.entries.delete(id);
      return null;
    }
    return e.owner;
  }

  async lookup(id: string): Promise<ObjectOwner | null> {
    return this.peek(id);
  }

  async lookupMany(ids: readonly string[]): Promise<Array<ObjectOwner | null>> {
    return ids.map((id) => this.peek(id));
  }

  async recordMany(ids: readonly string[], owner: ObjectOwner, ttlSeconds: number): Promise<void> {
    for (const id of ids) await this.record(id, owner, ttlSeconds);
  }

  async forget(id: string): Promise<void> {
    this.entries.delete(id);
  }
}

function parseOwner(v: string): ObjectOwner {
  const i = v.indexOf(SEP);
  return { team: v.slice(0, i), provider: v.slice(i + 1) };
}

export class RedisObjectRegistry implements ObjectRegistry {
  private readonly local: MemoryObjectRegistry;

  constructor(
    private readonly redis: Redis,
    now: () => number = Date.now,
    private readonly onError: (operation: string) => void = () => undefined,
  ) {
    this.local = new MemoryObjectRegistry(now);
  }

  async record(id: string, owner: ObjectOwner, ttlSeconds: number): Promise<void> {
    await this.local.record(id, owner, ttlSeconds);
    if (!redisReady(this.redis)) return this.onError('object_record');
    await this.redis.set(`obj:${id}`, `${owner.team}${SEP}${owner.provider}`, 'EX', Math.max(1, Math.ceil(ttlSeconds)), 'NX').then(
      () => undefined,
      () => this.onError('object_record'),
    );
  }

  async lookup(id: string): Promise<ObjectOwner | null> {
    if (redisReady(this.redis)) {
      try {
        const v = await this.redis.get(`obj:${id}`);
        return v !== null ? parseOwner(v) : this.local.peek(id);
      } catch {
        this.onError('object_lookup');
      }
    }
    const known = this.local.peek(id);
    if (known) return known;
    throw serviceUnavailable('The gateway cannot check who owns this object right now (its store is unreachable); retry shortly.', 'object_registry_unavailable');
  }

  async lookupMany(ids: readonly string[]): Promise<Array<ObjectOwner | null>> {
    if (!ids.length) return [];
    if (ids.length === 1) return [await this.lookup(ids[0])];
    if (redisReady(this.redis)) {
      try {
        const values = await this.redis.mget(ids.map((id) => `obj:${id}`));
        return values.map((v, i) => (v === null ? this.local.peek(ids[i]) : parseOwner(v)));
      } catch {
        this.onError('object_lookup');
      }
    }
    const known = ids.map((id) => this.local.peek(id));
    if (known.every((o) => o !== null)) return known;
    throw serviceUnavailable('The gateway cannot check who owns these objects right now (its store is unreachable); retry shortly.', 'object_registry_unavailable');
  }

  async recordMany(ids: readonly string[], owner: ObjectOwner, ttlSeconds: number): Promise<void> {
    if (!ids.length) return;
    await this.local.recordMany(ids, owner, ttlSeconds);
    if (!redisReady(this.redis)) return this.onError('object_record');
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.set(`obj:${id}`, `${owner.team}${SEP}${owner.provider}`, 'EX', Math.max(1, Math.ceil(ttlSeconds)), 'NX');
    await pipeline.exec().then(
      () => undefined,
      () => this.onError('object_record'),
    );
  }

  async forget(id: string): Promise<void> {
    await this.local.forget(id);
    if (redisReady(this.redis)) await this.redis.del(`obj:${id}`).catch(() => this.onError('object_forget'));
  }
}

/** Seconds an object lives: until the answer's `expires_at` (unix seconds) when it has one, else `defaultSeconds`. */
export function objectLifetimeSeconds(parsed: Record<string, unknown>, defaultSeconds: number, nowMs: number): number {
  const exp = parsed.expires_at;
  if (typeof exp === 'number' && Number.isFinite(exp) && exp * 1000 > nowMs) return Math.ceil(exp - nowMs / 1000);
  return defaultSeconds;
}

/** OpenAI's answer for an object that does not exist: the same for one that belongs to another team. */
export const objectNotFound = (id: string, param: string | null = null) =>
  new GatewayError(404, 'invalid_request_error', 'object_not_found', `No object with id '${id.slice(0, 128)}' was found.`, {}, param);

/**
 * Throws 404 object_not_found unless every id was recorded for `team`: the ids deduplicated,
 * their owners read in one round trip. Call it after admission (key, limits, budget), so a
 * refused request costs no lookups.
 */
export async function assertOwned(objects: ObjectRegistry, team: string, ids: readonly string[]): Promise<void> {
  if (!ids.length) return;
  const unique = [...new Set(ids)];
  const owners = await objects.lookupMany(unique);
  owners.forEach((owner, i) => {
    if (!owner || owner.team !== team) throw objectNotFound(unique[i]);
  });
}

/** Ids of the items an answer lists (`output[]` of a response, `data[]` of an item list), to record with their parent's owner. */
export function itemIds(parsed: Record<string, unknown> | undefined): string[] {
  const ids: string[] = [];
  for (const list of [parsed?.output, parsed?.data]) {
    if (!Array.isArray(list)) continue;
    for (const x of list) if (x && typeof (x as { id?: unknown }).id === 'string') ids.push((x as { id: string }).id);
  }
  return ids.slice(0, 1000);
}
