/**
 * The counters behind the limit rules (rules.ts). Every rule counts in fixed windows of its
 * length, one counter per scope value:
 *
 *   with Redis: a window leased in batches (lease.ts), shared by every replica, so most requests
 *     make no Redis call at all, whatever the resource (requests, tokens, USD); an in-memory
 *     window holding limit / expected replicas answers while Redis is unreachable;
 *   without Redis: the window in memory, holding the full limit.
 *
 * A burst pool of `burst` more per BURST_WINDOWS windows is used only once a window is spent.
 * Tokens: admission takes the request's expected tokens (admitted while tokens were left before
 * it); settle replaces them by the actual usage, and a refused or failed request gives them back.
 * USD: admission takes nothing (admitted while the window is not spent); settle adds the cost.
 */
import type Redis from 'ioredis';
import { MaybePromise, then } from '../core/maybe-async';
import { redisReady } from '../redis/client';
import { LeasedWindow, MemoryWindow, TakeResult, WindowStore } from './lease';
import { BURST_WINDOWS, LimitRule } from './rules';

/** Points of the in-memory fallback: the shared limit split over the replicas (at least 1). */
export const fallbackPoints = (points: number, replicas: number): number => Math.max(1, Math.floor(points / Math.max(1, replicas)));

export interface LimiterEnv {
  /** null: memory only (no Redis configured), holding the full limit. */
  redis: Redis | null;
  expectedReplicas: number;
  /** Called when Redis did not answer and the per-replica memory window decided a request (scope: key, team, team_model...). */
  onFallback?: (scope: string) => void;
}

/** One limited window's state, as the client headers report it. */
export interface WindowState {
  limit: number;
  remaining: number;
  resetMs: number;
}

export type CheckResult = { ok: boolean; state: WindowState };

/** Key prefix of every limit counter in Redis (the counter id after it carries the hash tag). */
export const LIMIT_KEY_PREFIX = 'rl';

/** The windows of one rule, for every counter (scope value) it has. */
export class RuleLimiter {
  private readonly main: WindowStore;
  /** With Redis: the per-replica share that answers while Redis does not. */
  private readonly insurance?: MemoryWindow;
  private readonly burst?: WindowStore;

  constructor(
    readonly rule: LimitRule,
    env: LimiterEnv,
    private readonly onFallback?: () => void,
  ) {
    const windowMs = rule.windowSeconds * 1000;
    const redis = env.redis;
    const leased = (prefix: string, limit: number, ms: number) =>
      new LeasedWindow({
        redis: redis!,
        prefix,
        limit,
        windowMs: ms,
        expectedReplicas: env.expectedReplicas,
        ready: () => redisReady(redis),
        maxPrefetch: rule.resource === 'requests' ? undefined : Infinity,
      });
    if (redis) {
      this.main = leased(LIMIT_KEY_PREFIX, rule.capacity, windowMs);
      this.insurance = new MemoryWindow(fallbackPoints(rule.capacity, env.expectedReplicas), windowMs);
    } else {
      this.main = new MemoryWindow(rule.capacity, windowMs);
    }
    if (rule.burst > 0) this.burst = redis ? leased(`${LIMIT_KEY_PREFIX}-burst`, rule.burst, windowMs * BURST_WINDOWS) : new MemoryWindow(rule.burst, windowMs * BURST_WINDOWS);
  }

  /** Takes `amount` for one request from the counter's window (then its burst pool); null: no store answered (admit). At once while the lease has units. */
  take(counter: string, amount: number): MaybePromise<CheckResult | null> {
    return then(this.main.take(counter, amount), (took) => this.afterMain(counter, amount, took));
  }

  private afterMain(counter: string, amount: number, took: TakeResult): MaybePromise<CheckResult | null> {
    const limit = this.rule.capacity;
    if (took === null && this.insurance) {
      // Redis down, or no answer to a lease asked twice.
      this.onFallback?.();
      took = this.insurance.take(counter, amount);
    }
    if (took === null) return null;
    const mainTook = took;
    if (mainTook.ok || !this.burst) return { ok: mainTook.ok, state: { limit, remaining: mainTook.remaining, resetMs: mainTook.resetMs } };
    // The window is spent: the burst pool.
    return then(this.burst.take(counter, amount), (burst) => ({ ok: burst ? burst.ok : true, state: { limit, remaining: 0, resetMs: Math.min(mainTook.resetMs, burst?.resetMs ?? Infinity) } }));
  }

  /** Replaces a reservation by the actual usage (tokens), or adds a cost (USD); never throws, never waits. */
  settle(counter: string, actual: number, reserved: number, reservedUntil: number): void {
    this.main.settle(counter, actual, reserved, reservedUntil);
    this.insurance?.settle(counter, actual, reserved, reservedUntil);
  }

  flush(): Promise<void> {
    return this.main.flush();
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
