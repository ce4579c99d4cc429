/**
 * A window (requests, tokens or nano-USD) shared by the replicas through Redis, without a Redis
 * call per request: each replica leases units of the window from one Redis counter in batches
 * and hands them out locally, so the hot path usually answers from memory. Every limit rule
 * (rules.ts) counts in one of these.
 *
 * Amounts (tokens, USD). A request takes its expected amount; it is admitted while the replica's
 * pool had anything left before it (the pool may go below zero: a debt), as the single counter
 * admitted "while tokens were left before it". settle() turns the reservation into the actual
 * usage locally. A debt, or a pool grown well beyond its prefetch by unused reservations, is
 * written back within DEBT_FLUSH_MS (one lease call carrying it, shared by every settle in that
 * time) or with the next lease, whichever is first. Visibility bound: usage settled on one
 * replica is counted in Redis within DEBT_FLUSH_MS plus one command timeout; until then other
 * replicas can admit past it by at most that much traffic. A replica's view of the others (its
 * x-ratelimit-remaining-*) is at most VIEW_MAX_AGE_MS old, or one lease old, whichever is newer.
 * The fleet's overshoot of a window is at most one request's expected amount per replica plus
 * the usage not yet flushed.
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
 *     exactly the limit when each replica has requests enough to use what it prefetched before
 *     (a burst that runs out on one replica leaves its prefetch there for its next request);
 *   - a request takes from all its rules at once (limits.ts, admission.ts), so a request another
 *     rule refuses holds a slot of this window until it is decided, then gives it back to this
 *     replica's pool. Concurrent requests on other replicas can be refused meanwhile. A replica
 *     whose last lease found the window spent writes such slots back within DEBT_FLUSH_MS (it
 *     keeps no surplus there), and a replica that refused for a spent window asks again once its
 *     view is VIEW_MAX_AGE_MS old; so such a slot is missed for at most that long, never lost;
 *   - a lease whose reply was lost to the command timeout is asked again under the same seq and
 *     answered with the grant already made (LEASE_LUA), so a late reply neither loses slots nor
 *     sends its requests to the fallback.
 */
import { randomUUID } from 'node:crypto';
import { inBackground } from '../core/background';
import type Redis from 'ioredis';

/** A prefetch covers about this much of the replica's recent traffic. */
export const LEASE_HORIZON_MS = 100;
/** Largest prefetch of a request window (amount windows are bounded by their fair share only). */
export const MAX_PREFETCH = 10_000;
/** A debt (usage beyond the reservations) or an unused surplus is written back at most this long after it arose. */
export const DEBT_FLUSH_MS = 50;
/** A replica's view of the window (what the others used) is refreshed by a lease at least this often while it takes from it. */
export const VIEW_MAX_AGE_MS = 1000;
/** A prefetch takes at most 1 / (FAIR_DIVISOR * expected replicas) of what is left in the window. */
export const FAIR_DIVISOR = 8;

/**
 * Slots to prefetch beyond the waiting requests: about LEASE_HORIZON_MS of the traffic seen
 * since the last lease (`taken` takes over `elapsedMs`), at most twice the takes seen (slow
 * start: a single request does not reserve a large batch) and at most MAX_PREFETCH.
 */
export function prefetchSize(taken: number, elapsedMs: number, max = MAX_PREFETCH): number {
  if (taken <= 0) return 0;
  const byRate = Math.ceil((taken * LEASE_HORIZON_MS) / Math.max(1, elapsedMs));
  return Math.min(max, 2 * taken, byRate);
}

/**
 * KEYS[1]: the window; KEYS[2]: the last lease of each replica in it (a hash: replica -> "seq:grant").
 * ARGV: demand, prefetch, limit, window ms, fair divisor, replica, lease seq, owed.
 * Adds `owed` first (usage beyond what was leased; negative: unused units given back, never
 * below zero), then grants the demand (up to what is left) plus a prefetch of at most left / divisor.
 * A lease asked again (the same replica and seq: its reply was lost to a timeout) gets the grant
 * it already made instead of a second one (and its owed is not added twice), so a retry neither
 * loses units nor takes more.
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
local owed = tonumber(ARGV[8] or '0')
if owed ~= 0 then
  used = redis.call('incrby', KEYS[1], owed)
  if used < 0 then
    redis.call('set', KEYS[1], 0, 'KEEPTTL')
    used = 0
  end
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
  gatewayLease(key: string, holders: string, demand: number, prefetch: number, limit: number, windowMs: number, divisor: number, replica: string, seq: number, owed: number): Promise<LeaseReply>;
};

function leaseClient(redis: Redis): LeaseClient {
  const r = redis as LeaseClient;
  if (typeof r.gatewayLease !== 'function') r.defineCommand('gatewayLease', { numberOfKeys: 2, lua: LEASE_LUA });
  return r;
}

/** An admission from the window: ok, or refused; `remaining` counts the window's unleased units plus this replica's unused ones. */
export interface Take {
  ok: boolean;
  remaining: number;
  resetMs: number;
}

/** null: the store could not answer (Redis down or slow): the caller decides on its fallback. */
export type TakeResult = Take | null;

/** A window of one limit: Redis-leased (LeasedWindow) or in memory (MemoryWindow). */
export interface WindowStore {
  /** Takes `amount` (default 1) for one request; admitted while units were left before it. */
  take(id: string, amount?: number): TakeResult | Promise<TakeResult>;
  /** Replaces a reservation by the actual usage; `reservedUntil`: the end of the window it was taken in (it counts only while that window lasts). */
  settle(id: string, actual: number, reserved: number, reservedUntil: number): void;
  /** Writes every debt and gives back every unused unit now (shutdown). */
  flush(): Promise<void>;
}

interface Waiter {
  amount: number;
  resolve: (r: TakeResult) => void;
}

interface Slot {
  /** Leased units not yet handed out; below zero: a debt to add to the window with the next lease. */
  pool: number;
  /** The window's count in Redis after our last lease. */
  used: number;
  /** When the window ends, on this replica's clock. */
  until: number;
  /** The last lease found the window spent: refuse locally until it ends. */
  spent: boolean;
  leasing: boolean;
  /** The lease call under way, when leasing (flush waits for it, then gives back what it granted). */
  inflight?: Promise<void>;
  waiters: Waiter[];
  /** Units taken since the last lease was asked for, and when that was (for the prefetch size). */
  taken: number;
  leasedAt: number;
  /** The last prefetch asked for: a new lease is asked for when the pool falls to half of it. */
  prefetch: number;
  /** A debt or surplus write is scheduled. */
  flushTimer?: NodeJS.Timeout;
}

export interface LeasedWindowOptions {
  redis: Redis;
  /** Key prefix of this window's counters (before the id; the id carries the hash tag). */
  prefix: string;
  limit: number;
  windowMs: number;
  expectedReplicas: number;
  /** Whether Redis can be asked now (connected and ready). */
  ready: () => boolean;
  now?: () => number;
  /** Largest prefetch (default MAX_PREFETCH). */
  maxPrefetch?: number;
}

/** Two clocks' ends of one window differ by less than this (the lease's round trip); more: another window. */
export const SAME_WINDOW_MS = 1000;

/** What settling adds to the window now counted in (ending at `windowEnd`): usage net of the reservation if it was taken in this window, else the whole usage. */
export const settleDelta = (actual: number, reserved: number, reservedUntil: number, windowEnd: number): number => (Math.abs(reservedUntil - windowEnd) < SAME_WINDOW_MS ? actual - reserved : actual);

export class LeasedWindow implements WindowStore {
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

  /** A window that ended leaves nothing behind: its unused units and any debt not yet written. */
  private roll(s: Slot, now: number): void {
    if (now < s.until) return;
    s.pool = 0;
    s.spent = false;
  }

  private remaining(s: Slot): number {
    return Math.max(0, Math.min(this.opts.limit, this.opts.limit - s.used + s.pool));
  }

  /** One request's units: from the local pool when it has any (no I/O), else from a lease shared with concurrent requests. */
  take(id: string, amount = 1): TakeResult | Promise<TakeResult> {
    const s = this.slot(id);
    const now = this.now();
    this.roll(s, now);
    // Once the window is spent, a take is served from the pool only if it fits: no new debt.
    if (s.pool > 0 && (!s.spent || s.pool >= amount)) {
      s.pool -= amount;
      s.taken += amount;
      if (!s.leasing && (s.pool <= s.prefetch >> 1 || now - s.leasedAt >= VIEW_MAX_AGE_MS) && this.opts.ready()) this.lease(id, s);
      return { ok: true, remaining: this.remaining(s), resetMs: s.until - now };
    }
    // Spent: refused locally, until the window ends or (units given back by other replicas) a view older than VIEW_MAX_AGE_MS is refreshed.
    if (s.spent && now - s.leasedAt < VIEW_MAX_AGE_MS) return { ok: false, remaining: 0, resetMs: s.until - now };
    if (!this.opts.ready()) return null;
    s.taken += amount;
    return new Promise<TakeResult>((resolve) => {
      s.waiters.push({ amount, resolve });
      // Leased at the end of this turn, for every request that arrived in it.
      if (!s.leasing) {
        s.leasing = true;
        process.nextTick(() => this.lease(id, s));
      }
    });
  }

  settle(id: string, actual: number, reserved: number, reservedUntil: number): void {
    const s = this.slot(id);
    const now = this.now();
    this.roll(s, now);
    const delta = Math.round(settleDelta(actual, reserved, reservedUntil, now < s.until ? s.until : -Infinity));
    if (delta === 0) return;
    s.pool -= delta;
    // Usage beyond the reservations is consumption too: it sizes the next prefetch (a USD window takes nothing at admission).
    if (delta > 0) s.taken += delta;
    this.scheduleFlush(id, s);
  }

  /**
   * What the slot owes Redis (> 0: a debt) or can give back (< 0: a surplus beyond twice its
   * prefetch; all of it when `all`, or when the last lease found the window spent: other replicas
   * are refused while units sit here), 0 if nothing.
   */
  private owed(s: Slot, all = false): number {
    if (s.pool < 0 || ((all || s.spent) && s.pool > 0)) return -s.pool;
    const keep = Math.max(1, s.prefetch);
    return s.pool > 2 * keep ? -(s.pool - keep) : 0;
  }

  private scheduleFlush(id: string, s: Slot): void {
    if (s.flushTimer || s.leasing || this.owed(s) === 0) return;
    s.flushTimer = setTimeout(() => {
      s.flushTimer = undefined;
      if (!s.leasing && this.owed(s) !== 0 && this.opts.ready()) void this.send(id, s, 0, 0);
    }, DEBT_FLUSH_MS);
    s.flushTimer.unref();
  }

  /** Writes every debt and gives back every unused unit (a stopping replica leaves nothing held). */
  async flush(): Promise<void> {
    // A lease still out (a prefetch) is waited for first: what it grants is given back too.
    await Promise.all([...this.slots.values()].map((s) => (s.leasing ? s.inflight?.catch(() => undefined) : undefined)));
    const sends: Array<Promise<void>> = [];
    for (const [id, s] of this.slots) {
      if (s.leasing || this.owed(s, true) === 0 || !this.opts.ready()) continue;
      clearTimeout(s.flushTimer);
      s.flushTimer = undefined;
      sends.push(this.send(id, s, 0, 0, true));
    }
    await Promise.all(sends);
  }

  private lease(id: string, s: Slot): void {
    const demand = s.waiters.reduce((n, w) => n + Math.max(1, w.amount), 0);
    const now = this.now();
    const prefetch = prefetchSize(s.taken, now - s.leasedAt, this.opts.maxPrefetch);
    s.taken = 0;
    s.leasedAt = now;
    s.prefetch = prefetch;
    void this.send(id, s, demand, prefetch);
  }

  /**
   * One lease call carrying what the slot owes (taken off the pool now; put back if the call fails).
   * A prefetch no request waits for (no demand), that owes nothing, far from the window's limit, is
   * written once the provider call of the request that set it off is written (core/background.ts):
   * to the slot, a lease that takes a little longer to come back. Any other lease goes at once:
   * units given back, a debt paid or the last half of a window may be what other replicas wait for.
   */
  private send(id: string, s: Slot, demand: number, prefetch: number, all = false): Promise<void> {
    s.leasing = true;
    const owed = this.owed(s, all);
    s.pool += owed;
    const seq = ++this.seq;
    const later = demand === 0 && owed === 0 && !s.spent && this.opts.limit - s.used >= this.opts.limit / 2;
    const call = later ? new Promise<void>((resolve) => inBackground(resolve)).then(() => this.ask(id, s, demand, prefetch, owed, seq, false)) : this.ask(id, s, demand, prefetch, owed, seq, false);
    s.inflight = call;
    return call;
  }

  /**
   * Sends one lease. A lease that fails while Redis still looks reachable (a reply later than
   * the command timeout, as when this process stalls for longer than that) is asked once more
   * under the same seq: the script answers with the grant it already made, if it ran, so the
   * waiting requests get their slots instead of the in-memory fallback.
   */
  private ask(id: string, s: Slot, demand: number, prefetch: number, owed: number, seq: number, retried: boolean): Promise<void> {
    const { limit, windowMs, prefix } = this.opts;
    return this.redis.gatewayLease(`${prefix}:${id}`, `${prefix}-leases:${id}`, demand, prefetch, limit, windowMs, this.divisor, this.replica, seq, owed).then(
      ([granted, used, ttl]) => this.granted(id, s, Number(granted), Number(used), Number(ttl)),
      () => (!retried && this.opts.ready() ? this.ask(id, s, demand, prefetch, owed, seq, true) : this.failed(s, owed)),
    );
  }

  private granted(id: string, s: Slot, granted: number, used: number, ttl: number): void {
    s.leasing = false;
    const now = this.now();
    const until = now + Math.max(0, ttl);
    // Units left from an earlier window (ended, or replaced in Redis) are not carried over.
    if (now >= s.until || Math.abs(until - s.until) >= SAME_WINDOW_MS) s.pool = Math.min(0, s.pool);
    s.until = until;
    s.used = used;
    s.pool += granted;
    s.spent = used >= this.opts.limit;
    while (s.waiters.length > 0 && s.pool > 0) {
      const w = s.waiters.shift()!;
      s.pool -= w.amount;
      w.resolve({ ok: true, remaining: this.remaining(s), resetMs: until - now });
    }
    if (s.waiters.length === 0) return this.scheduleFlush(id, s);
    if (s.spent) {
      const refused = s.waiters.splice(0);
      for (const w of refused) w.resolve({ ok: false, remaining: 0, resetMs: until - now });
    } else if (this.opts.ready()) {
      this.lease(id, s); // requests that arrived while this lease was out
    } else {
      this.failed(s, 0);
    }
  }

  private failed(s: Slot, owed: number): void {
    s.leasing = false;
    s.pool -= owed; // still owed: sent with the next lease
    const waiting = s.waiters.splice(0);
    for (const w of waiting) w.resolve(null);
  }
}

/** Counters a memory window keeps at most. */
const MEMORY_WINDOWS_MAX = 100_000;

/**
 * A window in this process's memory: the whole limit without Redis, or limit / replicas as the
 * insurance that answers while Redis is unreachable. Fixed windows started by the first take.
 */
export class MemoryWindow implements WindowStore {
  private readonly windows = new Map<string, { used: number; until: number }>();
  private readonly now: () => number;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    now?: () => number,
  ) {
    this.now = now ?? Date.now;
  }

  private current(id: string): { used: number; until: number } {
    const now = this.now();
    let w = this.windows.get(id);
    if (!w || now >= w.until) {
      if (this.windows.size >= MEMORY_WINDOWS_MAX) this.sweep(now);
      this.windows.set(id, (w = { used: 0, until: now + this.windowMs }));
    }
    return w;
  }

  /** Bounded: windows that ended go first; past the bound still, the oldest. */
  private sweep(now: number): void {
    for (const [id, w] of this.windows) if (now >= w.until) this.windows.delete(id);
    for (const id of this.windows.keys()) {
      if (this.windows.size < MEMORY_WINDOWS_MAX) break;
      this.windows.delete(id);
    }
  }

  take(id: string, amount = 1): Take {
    const w = this.current(id);
    const resetMs = w.until - this.now();
    if (w.used >= this.limit) return { ok: false, remaining: 0, resetMs };
    w.used += amount;
    return { ok: true, remaining: Math.max(0, this.limit - w.used), resetMs };
  }

  settle(id: string, actual: number, reserved: number, reservedUntil: number): void {
    const w = this.current(id);
    w.used = Math.max(0, w.used + settleDelta(actual, reserved, reservedUntil, w.until));
  }

  async flush(): Promise<void> {}
}
