/**
 * What the request handler needs from tenancy (keys, limits, budgets, spend) and from the
 * response cache. The handler only sequences these calls; the Redis-backed implementations
 * live beside this file and in service/cache, and simple in-memory/no-op ones serve the
 * `auth: none` demo and unit tests.
 */
import type { Usage } from '../core/endpoints';
import type { MaybePromise } from '../core/maybe-async';
import type { BudgetHold } from '../cost/spend';

export type { BudgetHold, Usage };

export interface Principal {
  /** Readable key name from config (never the key itself). */
  keyName: string;
  team: string;
  project: string;
  /** Keys issued through the admin API (service/store): the key's id, and what it is allowed. Config keys have none of these. */
  keyId?: string;
  /** Public model names the key may use; undefined: every model. */
  models?: readonly string[];
  /** The key's own budget, enforced like a team's (same machinery, same overshoot bound). */
  budget?: ScopeBudget;
  /** The key's own request/token limits (else the gateway default). */
  rateLimit?: { requests_per_minute?: number; burst: number; tokens_per_minute?: number };
}

/** A daily and/or monthly USD budget, with the ratio at which its alert metric fires. */
export interface ScopeBudget {
  daily_usd?: number;
  monthly_usd?: number;
  alert_threshold: number;
}

/** Keys and teams issued at runtime (service/store keeps them; tenancy only reads this). */
export interface KeyDirectory {
  /** The principal of the active, unexpired runtime key whose hash has this digest (keyDigest of the presented key), or undefined. */
  findDigest(digest: string, now: number): Principal | undefined;
  /** A team created through the admin API. */
  team(name: string): { budget?: ScopeBudget; rate_limit?: Principal['rateLimit'] } | undefined;
  /** True when at least one team exists at runtime (keys must then name a known team). */
  hasTeams(): boolean;
  /** Notes that a key authenticated (last_used_at is written in batches). */
  noteUsed(keyId: string, at: number): void;
}

/** Where every settled request's spend row goes (the PostgreSQL ledger). */
export interface SpendSink {
  record(s: Settlement, costUsd: number): void;
  /** True when the spool of unwritten rows is full: admission refuses (no request goes unaccounted). */
  full(): boolean;
}

export interface Admission {
  /** Headers for the client: x-ratelimit-limit-requests, -remaining-requests, -reset-requests and token equivalents. */
  headers: Record<string, string>;
  /** The expected tokens counted against the token limits at admission; give it to settle() or release(). */
  reservation?: TokenReservation;
}

/** Tokens reserved for one admitted request, until the earliest end of the windows they were counted in. */
export interface TokenReservation {
  tokens: number;
  until: number;
  /** Per limit counter, the end of the window the tokens were reserved in (a later window counts the whole usage). */
  windows?: Record<string, number>;
  /** The model the request was admitted for (its rules are matched again at settlement). */
  model?: string;
  /**
   * The request's maximum cost, reserved at admission in the budgets it was checked against (the
   * team's, a budgeted runtime key's): settle() replaces it by the cost, release() gives it back.
   */
  budget?: BudgetHold;
}

/** One served request, reported after the response finished (or was cut). */
export interface Settlement {
  principal: Principal;
  /** The request's id (x-request-id), stored in the ledger row. */
  requestId?: string;
  provider: string;
  /** Public model name the client asked for. */
  model: string;
  usage: Usage;
  /** True when usage was estimated with a tokenizer because the upstream returned none. */
  estimated: boolean;
  /** A pass-through request whose answer carried no usage and whose path has no configured price. */
  unpriced?: boolean;
  /** Cost at the serving provider's configured prices. */
  costUsd: number;
  /** What the same usage would cost at the model's list price (for savings). */
  listCostUsd: number;
  /** Served from the response cache: costs nothing; listCostUsd counts as saved. */
  cached: boolean;
  at: number;
  /** The request's admission reservation, which the actual usage replaces. */
  reservation?: TokenReservation;
}

export interface Tenancy {
  /** Throws GatewayError 401 for a missing/unknown key. */
  authenticate(authorization: string | undefined): Principal;
  /** True when the header carries an admin key (for /v1/gateway/* endpoints). */
  isAdmin(authorization: string | undefined): boolean;
  /**
   * Rate limits and budgets. Reserves `expectedTokens` against the token limits (admitted while
   * tokens were left before this request) and `maxCostUsd` against the budgets (admitted while
   * the spend and the reservations of requests in flight are below the budget). Throws
   * GatewayError 429 when refused, reserving nothing (a rejection, never a throw). The admission
   * is a value, not a promise, when no limit or budget had to ask Redis.
   */
  admit(principal: Principal, model: string, expectedTokens?: number, maxCostUsd?: number): MaybePromise<Admission>;
  /** Gives back the reservation (tokens and budget) of an admitted request that will not be settled (it failed, nothing billed). */
  release(principal: Principal, reservation: TokenReservation | undefined): void;
  /** Per-provider quota guard: false means skip this provider for now. */
  admitProvider(provider: string): MaybePromise<boolean>;
  /** Records usage: token limits, spend (buffered while Redis is down), cost metrics. Never throws. */
  settle(s: Settlement): void;
  /** Flushes buffered spend; called on shutdown. */
  flush(): Promise<void>;
}

export interface ResponseCache {
  /** null when caching does not apply (streaming, not deterministic, disabled, Cache-Control: no-cache). */
  keyFor(principal: Principal, model: string, body: Record<string, unknown>, headers: Record<string, string | string[] | undefined>): string | null;
  /** Returns the cached response body (JSON text) or null; Redis trouble means null, never an error. */
  get(key: string): Promise<string | null>;
  set(key: string, body: string): Promise<void>;
}
