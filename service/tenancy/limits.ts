/**
 * Rate limits with rate-limiter-flexible: fixed one-minute windows kept in Redis (so every
 * replica shares one count), each insured by an in-memory limiter holding limit / expected
 * replicas, which takes over while Redis is unreachable and hands back when it returns.
 *
 *   requests_per_minute + burst: with Redis, a per-minute window whose slots each replica leases
 *     in batches (lease.ts: no Redis call on most requests, never over the limit); without Redis
 *     or while it is down, rate-limiter-flexible in memory. A burst pool of `burst` extra
 *     requests per BURST_WINDOW_SECONDS is used only once the minute's requests are spent.
 *   tokens_per_minute: admission reserves the request's expected tokens in the window (one
 *     atomic increment, so concurrent requests each see what remains after themselves) and
 *     admits when tokens were left before it; settle replaces the reservation by the actual
 *     usage, and a refused or failed request gives it back.
 */
import type Redis from 'ioredis';
import { BurstyRateLimiter, RateLimiterAbstract, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { RateLimitConfig } from '../config/schema';
import { redisReady } from '../redis/client';
import type { TokenReservation } from './contracts';
import { LeasedWindow, TakeResult } from './lease';

export const WINDOW_SECONDS = 60;
export const BURST_WINDOW_SECONDS = 600;

export interface LimitSpec {
  requests_per_minute?: number;
  burst: number;
  tokens_per_minute?: number;
}

/** A key's own limits, field by field falling back to the global `rate_limit`. */
export function keyLimitSpec(own: RateLimitConfig | undefined, global: RateLimitConfig): LimitSpec {
  const rpmFromOwn = own?.requests_per_minute !== undefined;
  return {
    requests_per_minute: rpmFromOwn ? own!.requests_per_minute : global.requests_per_minute,
    burst: rpmFromOwn ? own!.burst : global.burst,
    tokens_per_minute: own?.tokens_per_minute ?? global.tokens_per_minute,
  };
}

/** Points of the in-memory fallback: the shared limit split over the replicas (at least 1). */
export const fallbackPoints = (points: number, replicas: number): number => Math.max(1, Math.floor(points / Math.max(1, replicas)));

export interface LimiterEnv {
  /** null: memory only (no Redis configured), holding the full limit. */
  redis: Redis | null;
  expectedReplicas: number;
  /** Called when Redis did not answer and the per-replica memory window decided a request (scope: key, team, provider). */
  onFallback?: (scope: string) => void;
}

/** The in-memory limiter that answers for a Redis window while Redis is unreachable: the limit split over the replicas. */
const insuranceFor = (env: LimiterEnv, keyPrefix: string, points: number, duration: number): RateLimiterMemory =>
  new RateLimiterMemory({ keyPrefix: `${keyPrefix}:mem`, points: fallbackPoints(points, env.expectedReplicas), duration });

function makeLimiter(env: LimiterEnv, keyPrefix: string, points: number, duration: number): RateLimiterAbstract {
  if (!env.redis) return new RateLimiterMemory({ keyPrefix, points, duration });
  return new RateLimiterRedis({
    storeClient: env.redis,
    keyPrefix,
    points,
    duration,
    // Not connected: go straight to the insurance limiter instead of waiting for an error.
    rejectIfRedisNotReady: true,
    insuranceLimiter: insuranceFor(env, keyPrefix, points, duration),
  });
}

type Consumer = Pick<RateLimiterAbstract, 'consume'>;

/** One limited window's state, as the client headers report it. */
export interface WindowState {
  limit: number;
  remaining: number;
  resetMs: number;
}

export type CheckResult = { ok: true; state: WindowState } | { ok: false; state: WindowState };

/** A token reservation: its state with the request counted, and without (for a refusal's headers). */
export type Reserved = CheckResult & { unreserved: WindowState };


/**
 * Tokens to add to the window when a request finishes: its usage minus its reservation while
 * the reservation's window lasts (negative gives tokens back); after that window, the usage.
 */
export function tokensToRecord(actual: number, reservation: TokenReservation | undefined, at: number): number {
  return reservation && at < reservation.until ? actual - reservation.tokens : actual;
}

const isRes = (x: unknown): x is RateLimiterRes => x instanceof RateLimiterRes;

/** The limits of one scope (a key, a team, a provider), for every id in that scope. */
export class ScopeLimiter {
  /** With Redis: the leased per-minute window; its memory insurance; the burst pool. */
  private readonly leased?: LeasedWindow;
  private readonly insurance?: Consumer;
  private readonly burstPool?: Consumer;
  /** Without Redis: the per-minute limiter (with its burst pool). */
  private readonly requests?: Consumer;
  private readonly tokens?: RateLimiterAbstract;
  private readonly onFallback?: () => void;

  constructor(
    readonly spec: LimitSpec,
    env: LimiterEnv,
    prefix: string,
  ) {
    const rpm = spec.requests_per_minute;
    if (rpm) {
      const burst = spec.burst > 0 ? makeLimiter(env, `${prefix}:burst`, spec.burst, BURST_WINDOW_SECONDS) : undefined;
      const redis = env.redis;
      if (redis) {
        this.leased = new LeasedWindow({ redis, prefix: `${prefix}:req`, limit: rpm, windowMs: WINDOW_SECONDS * 1000, expectedReplicas: env.expectedReplicas, ready: () => redisReady(redis) });
        this.insurance = insuranceFor(env, `${prefix}:req`, rpm, WINDOW_SECONDS);
        this.burstPool = burst;
        const scope = prefix.replace(/^rl:/, '');
        if (env.onFallback) this.onFallback = () => env.onFallback!(scope);
      } else {
        const perMinute = makeLimiter(env, `${prefix}:req`, rpm, WINDOW_SECONDS);
        this.requests = burst ? new BurstyRateLimiter(perMinute, burst) : perMinute;
      }
    }
    if (spec.tokens_per_minute) this.tokens = makeLimiter(env, `${prefix}:tok`, spec.tokens_per_minute, WINDOW_SECONDS);
  }

  /** Consumes one request; null when this scope has no request limit. Errors (every store failing) admit. */
  async takeRequest(id: string): Promise<CheckResult | null> {
    const limit = this.spec.requests_per_minute;
    if (!limit) return null;
    if (!this.leased) return this.consume(this.requests!, id, limit);
    const took: TakeResult = await this.leased.take(id);
    if (took === null) {
      // Redis down, or no answer to a lease asked twice.
      this.onFallback?.();
      return this.consume(this.insurance!, id, limit);
    }
    if (took.ok || !this.burstPool) return { ok: took.ok, state: { limit, remaining: took.remaining, resetMs: took.resetMs } };
    // The minute is spent: the burst pool, one Redis call per request beyond the minute's limit.
    const burst = await this.consume(this.burstPool, id, limit);
    return { ok: burst ? burst.ok : true, state: { limit, remaining: 0, resetMs: Math.min(took.resetMs, burst?.state.resetMs ?? Infinity) } };
  }

  private async consume(limiter: Consumer, id: string, limit: number): Promise<CheckResult | null> {
    try {
      const res = await limiter.consume(id, 1);
      return { ok: true, state: { limit, remaining: res.remainingPoints, resetMs: res.msBeforeNext } };
    } catch (err) {
      if (isRes(err)) return { ok: false, state: { limit, remaining: 0, resetMs: err.msBeforeNext } };
      return null;
    }
  }

  /**
   * Counts `tokens` for one request in the current window (never refused by itself) and reports
   * whether tokens were left before it; null when no token limit. Errors (both stores failing) admit.
   */
  async reserveTokens(id: string, tokens: number): Promise<Reserved | null> {
    if (!this.tokens) return null;
    const limit = this.spec.tokens_per_minute!;
    const n = Math.max(0, Math.ceil(tokens));
    try {
      const res = n > 0 ? await this.tokens.penalty(id, n) : await this.tokens.get(id);
      const consumed = res?.consumedPoints ?? 0;
      const resetMs = res ? Math.max(0, res.msBeforeNext) : WINDOW_SECONDS * 1000;
      const left = (used: number) => Math.min(limit, Math.max(0, limit - used));
      return { ok: consumed - n < limit, state: { limit, remaining: left(consumed), resetMs }, unreserved: { limit, remaining: left(consumed - n), resetMs } };
    } catch {
      return null;
    }
  }

  /** Adds tokens to the window (negative: gives them back); going over the limit here is expected (the next admission refuses). */
  async spendTokens(id: string, tokens: number): Promise<void> {
    const n = Math.round(tokens);
    if (!this.tokens || n === 0) return;
    await (n > 0 ? this.tokens.penalty(id, n) : this.tokens.reward(id, -n)).catch(() => undefined);
  }
}

/** Duration in OpenAI's header style: "1s", "6m0s", "250ms". */
export function formatReset(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.ceil(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s}s`;
}

/** Of several scopes' states, the one closest to refusing (lowest remaining share). */
export function tightest(states: Array<WindowState | undefined>): WindowState | undefined {
  let best: WindowState | undefined;
  for (const s of states) {
    if (s && (!best || s.remaining / s.limit < best.remaining / best.limit)) best = s;
  }
  return best;
}

export function rateLimitHeaders(requests: WindowState | undefined, tokens: WindowState | undefined): Record<string, string> {
  const h: Record<string, string> = {};
  if (requests) {
    h['x-ratelimit-limit-requests'] = String(requests.limit);
    h['x-ratelimit-remaining-requests'] = String(requests.remaining);
    h['x-ratelimit-reset-requests'] = formatReset(requests.resetMs);
  }
  if (tokens) {
    h['x-ratelimit-limit-tokens'] = String(tokens.limit);
    h['x-ratelimit-remaining-tokens'] = String(tokens.remaining);
    h['x-ratelimit-reset-tokens'] = formatReset(tokens.resetMs);
  }
  return h;
}
