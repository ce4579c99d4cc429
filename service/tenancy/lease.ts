/**
 * A request window shared by the replicas through Redis, without a Redis call per request:
 * each replica leases slots of the window from one Redis counter in batches and hands them
 * out locally, so the hot path usually answers from memory.
 *
 * The window is a fixed one, started by the first request and kept in the same key and shape
 * as rate-limiter-flexible's (`<prefix>:<id>`, a counter with a PX expiry), so replicas of the
 * previous release count in the same window during a rolling update.
 *
 * Exactness. A slot is leased only for a request waiting for it (demand) or as a prefetch; a
 * prefetch is at most about LEASE_HORIZON_MS of this replica's recent traffic (it at most
 * doubles from one lease to the next) and at most 1 / (FAIR_DIVISOR * expected replicas) of
 * what is left in the window. So:
 *   - the fleet never admits more than the limit in a window (every admission holds a slot
 *     counted in Redis; the in-memory fallback while Redis is down or answers nothing, even to
 *     a lease asked twice, is the exception, as before);
 *   - a replica can be refused while other replicas still hold unused prefetched slots: each
 *     holds at most its last prefetch plus what was left of the one before when it asked (a new
 *     lease is asked for once the pool is down to half a prefetch), so at most
 *     1.5 / (FAIR_DIVISOR * expected replicas) of the window each; they spend them on their next
 *     requests, or the slots expire with the window. Near the end of a window the prefetch
 *     shrinks to nothing and every slot goes to a waiting request, so concurrent requests get
 *     exactly the limit;
 *   - a lease whose reply was lost to the command timeout is asked again under the same seq and
 *     answered with the grant already made (LEASE_LUA), so a late reply neither loses slots nor
 *     sends its requests to the fallback.
 */
import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';

/** A prefetch covers about this much of the replica's recent traffic. */
export const LEASE_HORIZON_MS = 100;
/** Largest prefetch. */
export const MAX_PREFETCH = 10_000;
/** A prefetch takes at most 1 / (FAIR_DIVISOR * expected replicas) of what is left in the window. */
export const FAIR_DIVISOR = 8;

/**
 * Slots to prefetch beyond the waiting requests: about LEASE_HORIZON_MS of the traffic seen
 * since the last lease (`taken` takes over `elapsedMs`), at most twice the takes seen (slow
 * start: a single request does not reserve a large batch) and at most MAX_PREFETCH.
 */
export function prefetchSize(taken: number, elapsedMs: number): number {
  if (taken <= 0) return 0;
  const byRate = Math.ceil((taken * LEASE_HORIZON_MS) / Math.max(1, elapsedMs));
  return Math.min(MAX_PREFETCH, 2 * taken, byRate);
}

/**
 * KEYS[1]: the window; KEYS[2]: the last lease of each replica in it (a hash: replica -> "seq:grant").
 * ARGV: demand, prefetch, limit, window ms, fair divisor, replica, lease seq.
 * Grants the demand (up to what is left) plus a prefetch of at most left / divisor.
 * A lease asked again (the same replica and seq: its reply was lost to a timeout) gets the grant
 * it already made instead of a second one, so a retry neither loses slots nor takes more.
 * Returns {granted, used in the window after the grant, ms until the window ends}.
 */
export const LEASE_LUA = `
redis.call('set', KEYS[1], 0, 'PX', ARGV[4], 'NX')
local used = tonumber(redis.call('get', KEYS[1]))
local ttl = redis.call('pttl', KEYS[1])
if ttl < 0 then
  redis.call('pexpire', KEYS[1], ARGV[4])
  ttl = tonumber(ARGV[4])
end
local last = redis.call('hget', KEYS[2], ARGV[6])
if last then
  local sep = string.find(last, ':', 1, true)
  if string.sub(last, 1, sep - 1) == ARGV[7] then return {tonumber(string.sub(last, sep + 1)), used, ttl} end
end
local left = tonumber(ARGV[3]) - used
local grant = 0
if left > 0 then
  local fair = math.floor(left / tonumber(ARGV[5]))
  grant = math.min(left, tonumber(ARGV[1]) + math.min(tonumber(ARGV[2]), fair))
  if grant > 0 then used = redis.call('incrby', KEYS[1], grant) end
end
redis.call('hset', KEYS[2], ARGV[6], ARGV[7] .. ':' .. grant)
redis.call('pexpire', KEYS[2], ttl)
return {grant, used, ttl}
`;

type LeaseReply = [granted: number, used: number, ttlMs: number];
type LeaseClient = Redis & {
  gatewayLease(key: string, holders: string, demand: number, prefetch: number, limit: number, windowMs: number, divisor: number, replica: string, seq: number): Promise<LeaseReply>;
};

function leaseClient(redis: Redis): LeaseClient {
  const r = redis as LeaseClient;
  if (typeof r.gatewayLease !== 'function') r.defineCommand('gatewayLease', { numberOfKeys: 2, lua: LEASE_LUA });
  return r;
}

/** An admission from the window: ok, or refused; `remaining` counts the window's unleased slots plus this replica's unused ones. */
export interface Take {
  ok: boolean;
  remaining: number;
  resetMs: number;
}

/** null: the store could not answer (Redis down or slow): the caller decides on its fallback. */
export type TakeResult = Take | null;

interface Slot {
  /** Leased slots not yet handed out. */
  pool: number;
  /** The window's count in Redis after our last lease. */
  used: number;
  /** When the window ends, on this replica's clock. */
  until: number;
  /** The last lease found the window spent: refuse locally until it ends. */
  spent: boolean;
  leasing: boolean;
  waiters: Array<(r: TakeResult) => void>;
  /** Takes since the last lease was asked for, and when that was (for the prefetch size). */
  taken: number;
  leasedAt: number;
  /** The last prefetch asked for: a new lease is asked for when the pool falls to half of it. */
  prefetch: number;
}

export interface LeasedWindowOptions {
  redis: Redis;
  /** Key prefix of this window's counters (before the id). */
  prefix: string;
  limit: number;
  windowMs: number;
  expectedReplicas: number;
  /** Whether Redis can be asked now (connected and ready). */
  ready: () => boolean;
  now?: () => number;
}

export class LeasedWindow {
  private readonly slots = new Map<string, Slot>();
  private readonly redis: LeaseClient;
  private readonly now: () => number;
  private readonly divisor: number;
  /** This replica in the window's lease record, and the number of its last lease. */
  private readonly replica = randomUUID();
  private seq = 0;

  constructor(private readonly opts: LeasedWindowOptions) {
    this.redis = leaseClient(opts.redis);
    this.now = opts.now ?? Date.now;
    this.divisor = FAIR_DIVISOR * Math.max(1, opts.expectedReplicas);
  }

  private slot(id: string): Slot {
    let s = this.slots.get(id);
    if (!s) {
      s = { pool: 0, used: 0, until: 0, spent: false, leasing: false, waiters: [], taken: 0, leasedAt: 0, prefetch: 0 };
      this.slots.set(id, s);
    }
    return s;
  }

  /** One request's slot: from the local pool when it has one (no I/O), else from a lease shared with concurrent requests. */
  take(id: string): TakeResult | Promise<TakeResult> {
    const s = this.slot(id);
    const now = this.now();
    if (now >= s.until) {
      s.pool = 0;
      s.spent = false;
    }
    if (s.pool > 0) {
      s.pool--;
      s.taken++;
      if (!s.leasing && s.pool <= s.prefetch >> 1 && this.opts.ready()) this.lease(id, s);
      return { ok: true, remaining: this.opts.limit - s.used + s.pool, resetMs: s.until - now };
    }
    if (s.spent) return { ok: false, remaining: 0, resetMs: s.until - now };
    if (!this.opts.ready()) return null;
    s.taken++;
    return new Promise<TakeResult>((resolve) => {
      s.waiters.push(resolve);
      // Leased at the end of this turn, for every request that arrived in it.
      if (!s.leasing) {
        s.leasing = true;
        process.nextTick(() => this.lease(id, s));
      }
    });
  }

  private lease(id: string, s: Slot): void {
    s.leasing = true;
    const demand = s.waiters.length;
    const now = this.now();
    const prefetch = prefetchSize(s.taken, now - s.leasedAt);
    s.taken = 0;
    s.leasedAt = now;
    s.prefetch = prefetch;
    this.ask(id, s, demand, prefetch, ++this.seq, false);
  }

  /**
   * Sends one lease. A lease that fails while Redis still looks reachable (a reply later than
   * the command timeout, as when this process stalls for longer than that) is asked once more
   * under the same seq: the script answers with the grant it already made, if it ran, so the
   * waiting requests get their slots instead of the in-memory fallback.
   */
  private ask(id: string, s: Slot, demand: number, prefetch: number, seq: number, retried: boolean): void {
    const { limit, windowMs, prefix } = this.opts;
    this.redis.gatewayLease(`${prefix}:${id}`, `${prefix}-leases:${id}`, demand, prefetch, limit, windowMs, this.divisor, this.replica, seq).then(
      ([granted, used, ttl]) => this.granted(id, s, Number(granted), Number(used), Number(ttl)),
      () => (!retried && this.opts.ready() ? this.ask(id, s, demand, prefetch, seq, true) : this.failed(s)),
    );
  }

  private granted(id: string, s: Slot, granted: number, used: number, ttl: number): void {
    s.leasing = false;
    const now = this.now();
    const until = now + Math.max(0, ttl);
    // Slots left from an earlier window (ended, or replaced in Redis) are not carried over.
    if (now >= s.until || Math.abs(until - s.until) > 1000) s.pool = 0;
    s.until = until;
    s.used = used;
    s.pool += granted;
    s.spent = used >= this.opts.limit;
    while (s.waiters.length > 0 && s.pool > 0) {
      s.pool--;
      s.waiters.shift()!({ ok: true, remaining: this.opts.limit - used + s.pool, resetMs: until - now });
    }
    if (s.waiters.length === 0) return;
    if (s.spent) {
      const refused = s.waiters.splice(0);
      for (const w of refused) w({ ok: false, remaining: 0, resetMs: until - now });
    } else if (this.opts.ready()) {
      this.lease(id, s); // requests that arrived while this lease was out
    } else {
      this.failed(s);
    }
  }

  private failed(s: Slot): void {
    s.leasing = false;
    const waiting = s.waiters.splice(0);
    for (const w of waiting) w(null);
  }
}
