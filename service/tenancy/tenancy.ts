/**
 * The Tenancy the request handler calls: keys -> principal, rate limits, budgets, spend.
 * Built once per process by createTenancy(config, deps); with `redis: null` everything is
 * in memory (single replica, demo).
 */
import type Redis from 'ioredis';
import type { GatewayConfig, TeamConfig } from '../config/schema';
import { budgetExceeded, forbidden, serviceUnavailable } from '../core/errors';
import { inBackground } from '../core/background';
import { all, MaybePromise, outcome, then } from '../core/maybe-async';
import type { Metrics } from '../metrics/metrics';
import { errorCode, Logger, redisReady, silentLogger } from '../redis/client';
import { budgetKey, MemorySpendStore, RedisSpendStore, settledBudgetShare, SpendLedger, SpendReport, SpendStore, spendReport } from '../cost/spend';
import { toNanoUsd } from '../cost/cost';
import { BudgetScope, BudgetStatus, Period, budgetMessage, checkBudget, keyScope, secondsUntilReset, teamScope, utcPeriods } from './budget';
import type { Admission, BudgetHold, KeyDirectory, Principal, ScopeBudget, Settlement, SpendSink, Tenancy, TokenReservation } from './contracts';
import { authError, createKeyRing } from './keys';
import { admitByRules, admitProviderByRules, RuleSet, settleRules, settleTokens } from './admission';

export interface TenancyDeps {
  /** null: no Redis configured (memory state). */
  redis: Redis | null;
  metrics: Metrics;
  now?: () => number;
  logger?: Logger;
  /** How often buffered spend is retried (ms). */
  flushIntervalMs?: number;
  /** How long spend waits to share a Redis write with other requests' (ms; default SPEND_COALESCE_MS). */
  spendCoalesceMs?: number;
  /** Keys and teams issued through the admin API (service/store), when the store is on. */
  directory?: KeyDirectory;
  /** The PostgreSQL spend ledger, when the store is on. */
  sink?: SpendSink;
}

export interface GatewayTenancy extends Tenancy {
  /** Serves GET /v1/gateway/spend (query parameters as Express parses them). Throws GatewayError 400/503. */
  spendReport(query: Record<string, unknown>): Promise<SpendReport>;
  /** Who an admin request is, for the audit log ("admin:<hash prefix>"), or undefined when it is not an admin. */
  adminId(authorization: string | undefined): string | undefined;
  /** Stops the flush timer (call after flush() on shutdown). */
  close(): void;
}

interface TeamSpend {
  day: string;
  month: string;
  /** The team's spend as last read, plus this replica's own since. */
  dayNano: number;
  monthNano: number;
  /** When it was last read from the store (0: not read in this period). */
  readAt: number;
  /** The month's spend as read then, and the fleet's spend rate between the last two reads (nano-USD per ms; Infinity: unknown). */
  readMonthNano: number;
  rate: number;
}

/**
 * A team's budget is judged on a view of its spend at most BUDGET_VIEW_MS old (refreshed in the
 * background once half that old), as long as what is left exceeds what the fleet's measured
 * spend rate could use in HEADROOM_FACTOR such periods; closer to the budget, or with no rate
 * measured yet, every admission reads the spend from Redis (single flight), as before.
 */
export const BUDGET_VIEW_MS = 500;
/**
 * Spend of teams far from their budgets is written at most this long after the request (several
 * requests share a write); a team close to a budget has its spend written at once.
 */
export const SPEND_COALESCE_MS = 50;
export const HEADROOM_FACTOR = 4;

/** Spend as read (or known), with this replica's own spend at that moment. */
interface SpendView {
  day: number;
  month: number;
  ownDay: number;
  ownMonth: number;
}

const freshSpend = (day: string, month: string): TeamSpend => ({ day, month, dayNano: 0, monthNano: 0, readAt: 0, readMonthNano: 0, rate: Infinity });

/** The spend to judge a budget on without a read, or null when a read is needed (pure). */
export function cachedSpend(s: TeamSpend | undefined, budget: NonNullable<TeamConfig['budget']>, at: number, day: string): { day: number; month: number } | null {
  if (!s || s.readAt === 0 || s.day !== day || at - s.readAt >= BUDGET_VIEW_MS) return null;
  const left = Math.min(budget.daily_usd === undefined ? Infinity : toNanoUsd(budget.daily_usd) - s.dayNano, budget.monthly_usd === undefined ? Infinity : toNanoUsd(budget.monthly_usd) - s.monthNano);
  return left > s.rate * BUDGET_VIEW_MS * HEADROOM_FACTOR ? { day: s.dayNano, month: s.monthNano } : null;
}

/** Counts a Redis failure and logs it at most every 10 s. */
function redisErrorReporter(metrics: Metrics, log: Logger, now: () => number): (operation: string, err: unknown) => void {
  let lastErrorLog = 0;
  return (operation, err) => {
    metrics.redisErrors.inc({ operation });
    const t = now();
    if (t - lastErrorLog > 10_000) {
      lastErrorLog = t;
      log.warn({ operation, reason: errorCode(err) }, 'redis call failed; falling back');
    }
  };
}

/** The spend store and its write-behind ledger, flushed on a timer and whenever Redis is ready again. */
function createSpend(deps: TenancyDeps, redisError: (operation: string, err: unknown) => void) {
  const { redis, metrics } = deps;
  const store: SpendStore = redis ? new RedisSpendStore(redis) : new MemorySpendStore();
  const ledger = new SpendLedger(store, {
    coalesceMs: deps.spendCoalesceMs ?? SPEND_COALESCE_MS,
    canWrite: () => !redis || redisReady(redis),
    onBuffered: (n) => metrics.spendBuffered.set(n),
    onError: (err) => redisError('spend_write', err),
  });
  const flushSoon = () => void ledger.flush().catch(() => undefined);
  const timer = setInterval(() => {
    if (ledger.buffered > 0) flushSoon();
  }, deps.flushIntervalMs ?? 1000);
  timer.unref();
  redis?.on('ready', flushSoon);
  const close = () => {
    clearInterval(timer);
    redis?.off('ready', flushSoon);
  };
  return { store, ledger, close };
}

/**
 * Budgets of teams and of runtime keys (a BudgetScope each: "team" or "key:<id>"): spend read
 * from the store (single flight), or the last known spend plus this replica's own while Redis
 * is down. Every map below is keyed by the scope id.
 */
class ScopeBudgets {
  /** Last known spend per team, plus this replica's own spend since: the budget basis while Redis is down. */
  private readonly known = new Map<string, TeamSpend>();
  /**
   * Budget reads in flight, by team and period: admissions arriving while one is out share it
   * (single flight), so a burst of requests costs one Redis read, not one each. A shared read
   * is at most one round trip old, which the in-flight overshoot bound already covers.
   */
  private readonly reads = new Map<string, Promise<SpendView>>();
  /** This replica's own spend per team in the current day and month (reservations of its requests in flight included). */
  private readonly own = new Map<string, { day: string; month: string; dayNano: number; monthNano: number }>();
  /** Teams whose background refresh is scheduled (refreshSoon). */
  private readonly refreshing = new Set<string>();

  constructor(
    private readonly spend: { store: SpendStore; ledger: SpendLedger },
    private readonly redis: Redis | null,
    private readonly metrics: Metrics,
    private readonly now: () => number,
    private readonly redisError: (operation: string, err: unknown) => void,
  ) {}

  private localSpend(team: string, at: number): TeamSpend {
    const { day, month } = utcPeriods(at);
    let s = this.known.get(team);
    if (!s || s.month !== month) s = freshSpend(day, month);
    else if (s.day !== day) s = { ...freshSpend(day, month), monthNano: s.monthNano };
    this.known.set(team, s);
    return s;
  }

  /** This replica's own spend so far in the team's current day and month (a release or a settlement below its reservation lowers it). */
  private ownSpend(team: string, day: string, month: string): { day: number; month: number } {
    const o = this.own.get(team);
    return { day: o && o.day === day ? o.dayNano : 0, month: o && o.month === month ? o.monthNano : 0 };
  }

  /**
   * Adds nano-USD (a settled cost, a reservation, or a negative release or difference) to the
   * team's known and own spend of the current day and month, when `periods` (the day and month it
   * is counted in; default: those of `at`) are still current.
   */
  addSpend(team: string, at: number, nano: number, periods: { day: string; month: string } = utcPeriods(at)): void {
    const local = this.localSpend(team, at);
    const { day, month } = utcPeriods(at);
    let o = this.own.get(team);
    if (!o || o.month !== month) this.own.set(team, (o = { day, month, dayNano: 0, monthNano: 0 }));
    else if (o.day !== day) this.own.set(team, (o = { ...o, day, dayNano: 0 }));
    if (periods.month !== month) return;
    local.monthNano += nano;
    o.monthNano += nano;
    if (periods.day !== day) return;
    local.dayNano += nano;
    o.dayNano += nano;
  }

  /**
   * Adds to a scope's budget counters only (a reservation, or a release): this replica's view at
   * once, Redis with the next spend write (at once when the scope is close to its budget).
   */
  hold(scopeId: string, at: number, nano: number, budget: ScopeBudget | undefined, periods: { day: string; month: string } = utcPeriods(at)): void {
    if (!nano) return;
    this.addSpend(scopeId, at, nano, periods);
    this.spend.ledger.recordBudget(scopeId, periods.day, periods.month, nano, this.near(scopeId, budget));
  }

  /**
   * The stored spend, plus this replica's spend that the read cannot contain: what was not yet
   * sent when the read was issued (writes go out on the same connection, in order, so any write
   * sent before the read is in it) and what was recorded since. One read in flight per team and
   * day is shared by every admission that needs it, and updates the known spend (and the
   * measured spend rate) once. The view carries this replica's own spend when it was taken, so an
   * admission resuming after another that shared the read adds what that one reserved since.
   */
  private readStored(team: string, day: string, month: string): Promise<SpendView> {
    const k = `${team}\u0000${day}`;
    let read = this.reads.get(k);
    if (!read) {
      const key = budgetKey(team, month);
      const { ledger } = this.spend;
      const own0 = this.ownSpend(team, day, month);
      const base = { day: ledger.unsent(key, `d:${day}`) - own0.day, month: ledger.unsent(key, 'm') - own0.month };
      read = this.spend.store
        .readBudget(team, day, month)
        .then((v) => {
          const own = this.ownSpend(team, day, month);
          const spent = { day: v.day + base.day + own.day, month: v.month + base.month + own.month };
          this.noteRead(team, day, month, spent);
          return { ...spent, ownDay: own.day, ownMonth: own.month };
        })
        .finally(() => this.reads.delete(k));
      this.reads.set(k, read);
    }
    return read;
  }

  /** A read's result becomes the known spend; the fleet's spend rate is measured against the read before. */
  private noteRead(team: string, day: string, month: string, spent: { day: number; month: number }): void {
    const t = this.now();
    const prev = this.known.get(team);
    const dt = prev && prev.readAt > 0 && prev.month === month ? t - prev.readAt : 0;
    // Two reads within the same millisecond measure nothing: keep the rate measured before.
    const rate = dt > 0 ? Math.max(0, spent.month - prev!.readMonthNano) / dt : prev && prev.readAt === t ? prev.rate : Infinity;
    this.known.set(team, { day, month, dayNano: spent.day, monthNano: spent.month, readAt: t, readMonthNano: spent.month, rate });
  }

  /** A view refreshed in the background, once the provider call of the request that set it off is written (core/background.ts). */
  private refreshSoon(team: string): void {
    if (this.refreshing.has(team)) return;
    this.refreshing.add(team);
    inBackground(() => {
      this.refreshing.delete(team);
      void this.readTeamSpend(team, this.now());
    });
  }

  private async readTeamSpend(team: string, at: number): Promise<SpendView> {
    const { day, month } = utcPeriods(at);
    if (!this.redis || redisReady(this.redis)) {
      try {
        return await this.readStored(team, day, month);
      } catch (err) {
        this.redisError('budget_read', err);
      }
    }
    const s = this.localSpend(team, at);
    const own = this.ownSpend(team, day, month);
    return { day: s.dayNano, month: s.monthNano, ownDay: own.day, ownMonth: own.month };
  }

  /** A view's spend plus this replica's own recorded since it was taken (judged without yielding, so no reservation slips between). */
  private current(team: string, at: number, v: SpendView): { day: number; month: number } {
    const { day, month } = utcPeriods(at);
    const own = this.ownSpend(team, day, month);
    return { day: v.day + own.day - v.ownDay, month: v.month + own.month - v.ownMonth };
  }

  private exportBudget(scope: BudgetScope, status: BudgetStatus): void {
    if (scope.kind !== 'team') return; // per-key ratios would make the label set unbounded
    const team = scope.id;
    for (const period of ['daily', 'monthly'] as Period[]) {
      const ratio = status.ratios[period];
      if (ratio === undefined) continue;
      this.metrics.budgetUsedRatio.set({ team, period }, ratio);
      this.metrics.budgetAlert.set({ team, period }, status.alerts[period] ? 1 : 0);
    }
  }

  /** True when the scope has a budget its spend is close to (by the same rule as cachedSpend): its spend must reach Redis at once. */
  near(scopeId: string, budget: ScopeBudget | undefined): boolean {
    if (!budget) return false;
    const at = this.now();
    return cachedSpend(this.known.get(scopeId), budget, at, utcPeriods(at).day) === null;
  }

  /**
   * Throws budgetExceeded when the scope's daily or monthly budget is used up by its spend and
   * the reservations of requests in flight; else reserves `nano` (in the day and month of `at`)
   * at once, in the same turn as the decision, and says whether it did.
   */
  check(scope: BudgetScope, budget: ScopeBudget | undefined, at: number, nano: number): MaybePromise<boolean> {
    if (!budget) return false;
    const known = this.known.get(scope.id);
    const spent = cachedSpend(known, budget, at, utcPeriods(at).day);
    if (!spent) return this.readTeamSpend(scope.id, at).then((v) => this.decide(scope, budget, at, nano, this.current(scope.id, at, v)));
    if (at - known!.readAt >= BUDGET_VIEW_MS / 2) this.refreshSoon(scope.id);
    return this.decide(scope, budget, at, nano, spent);
  }

  private decide(scope: BudgetScope, budget: ScopeBudget, at: number, nano: number, spent: { day: number; month: number }): boolean {
    const status = checkBudget(budget, spent);
    this.exportBudget(scope, status);
    if (status.refused) {
      this.metrics.budgetRejections.inc({ team: scope.team, period: status.refused });
      throw budgetExceeded(budgetMessage(scope, status.refused, budget), secondsUntilReset(status.refused, this.now()));
    }
    this.hold(scope.id, at, nano, budget);
    return nano > 0;
  }
}

interface AdmitParts {
  rules: RuleSet;
  budgets: ScopeBudgets;
  /** The team's budget (config, else the admin API's), when it sets an amount. */
  teamBudget: (team: string) => ScopeBudget | undefined;
  sink?: SpendSink;
  metrics: Metrics;
  now: () => number;
}

/** The budget of a scope a reservation holds: the team's, or the principal's own (a budgeted runtime key). */
const budgetOf = (parts: AdmitParts, principal: Principal, scopeId: string): ScopeBudget | undefined => (scopeId === principal.team ? parts.teamBudget(principal.team) : principal.budget);

/** Gives back a reservation's hold on every budget it was made in (a request refused or failed, nothing billed). */
function releaseBudget(parts: AdmitParts, principal: Principal, hold: BudgetHold | undefined): void {
  if (!hold) return;
  const at = parts.now();
  for (const scope of hold.scopes) parts.budgets.hold(scope, at, -hold.nano, budgetOf(parts, principal, scope), hold);
}

/**
 * The team's budget and the key's own (a runtime key with a budget), checked together, each
 * reserving `nano` when it admits; the first refusal wins and gives back what the other reserved.
 */
function checkBudgets(parts: AdmitParts, principal: Principal, at: number, nano: number): MaybePromise<BudgetHold | undefined> {
  const scopes = [teamScope(principal.team)];
  if (principal.keyId && principal.budget) scopes.push(keyScope(principal.keyId, principal.keyName, principal.team));
  const checks = scopes.map((scope) => outcome(() => parts.budgets.check(scope, budgetOf(parts, principal, scope.id), at, nano)));
  return then(all(checks), (results) => {
    const { day, month } = utcPeriods(at);
    const held = scopes.filter((_, i) => results[i].ok && (results[i] as { value: boolean }).value);
    const hold = held.length ? { nano, day, month, scopes: held.map((scope) => scope.id) } : undefined;
    const refused = results.find((r) => !r.ok);
    if (refused && !refused.ok) {
      releaseBudget(parts, principal, hold);
      throw refused.err;
    }
    return hold;
  });
}

/** The rules' token reservation, carrying the budget hold too (a reservation of no tokens when no token rule matched). */
function withHold(reservation: TokenReservation | undefined, hold: BudgetHold | undefined, model: string): TokenReservation | undefined {
  if (!hold) return reservation;
  return { ...(reservation ?? { tokens: 0, until: Infinity, model }), budget: hold };
}

/**
 * Refuses a model outside the key's allowlist (403) and any request while the ledger spool is
 * full (503); then the limit rules (usually no Redis call: leased windows) and the budgets, issued
 * together so their Redis calls share one round trip; refuses with the tightest headers. An
 * admitted request holds `maxCostUsd` in its budgets until it is settled or released.
 */
function admitRequest(parts: AdmitParts, principal: Principal, model: string, expectedTokens: number, maxCostUsd: number): MaybePromise<Admission> {
  if (principal.models && !principal.models.includes(model)) {
    throw forbidden(`This API key may not use the model "${model.slice(0, 256)}". Its models: ${principal.models.join(', ')}.`, 'model_not_allowed');
  }
  if (parts.sink?.full()) throw serviceUnavailable('The spend ledger cannot record more requests until its database is back. Retry shortly.', 'ledger_unavailable');
  const at = parts.now();
  const budgetCheck = outcome(() => checkBudgets(parts, principal, at, Math.max(0, toNanoUsd(maxCostUsd))));
  const byRules = outcome(() => admitByRules(parts.rules, parts.metrics, principal, model, expectedTokens, at));
  return then(byRules, (rules) =>
    then(budgetCheck, (budget) => {
      if (!rules.ok) {
        if (budget.ok) releaseBudget(parts, principal, budget.value);
        throw rules.err;
      }
      if (!budget.ok) {
        rules.value.release();
        throw budget.err;
      }
      return { headers: rules.value.headers, reservation: withHold(rules.value.reservation, budget.value, model) };
    }),
  );
}

/** The cost, token and savings metrics of one settled request (cost: what it cost, 0 for a cache hit). */
function countSettlement(metrics: Metrics, s: Settlement, cost: number): void {
  const { team, project } = s.principal;
  const labels = { provider: s.provider, model: s.model, team, project };
  if (cost > 0) metrics.cost.inc({ ...labels, estimated: String(s.estimated) }, cost);
  if (s.cached) {
    if (s.listCostUsd > 0) metrics.savings.inc({ model: s.model, team, project, reason: 'cache' }, s.listCostUsd);
  } else {
    if (s.usage.prompt_tokens > 0) metrics.tokens.inc({ ...labels, direction: 'input' }, s.usage.prompt_tokens);
    if (s.usage.completion_tokens > 0) metrics.tokens.inc({ ...labels, direction: 'output' }, s.usage.completion_tokens);
    if (s.listCostUsd > cost) metrics.savings.inc({ model: s.model, team, project, reason: 'routing' }, s.listCostUsd - cost);
  }
}

/** A settled cost in a scope's local spend: where the request's reservation holds part of it, the difference, in the reservation's day and month. */
function addSettled(budgets: ScopeBudgets, scope: string, s: Settlement, nano: number): void {
  const share = settledBudgetShare(scope, s.reservation?.budget, nano, utcPeriods(s.at));
  budgets.addSpend(scope, s.at, share.nano, share);
}

/** Adds a settled request's cost to the team's (and a budgeted key's) local spend and to the Redis spend ledger, replacing its budget reservation. */
function recordSpend(parts: AdmitParts, ledger: SpendLedger, s: Settlement, cost: number): void {
  const { budgets } = parts;
  const { team, project, keyId, budget: keyBudget } = s.principal;
  const { day, month } = utcPeriods(s.at);
  const keyBudgetScope = keyId && keyBudget ? keyScope(keyId, s.principal.keyName, team).id : undefined;
  addSettled(budgets, team, s, toNanoUsd(cost));
  if (keyBudgetScope) addSettled(budgets, keyBudgetScope, s, toNanoUsd(cost));
  const entry = {
    day,
    month,
    team,
    project,
    provider: s.provider,
    model: s.model,
    costUsd: cost,
    listCostUsd: Math.max(0, s.listCostUsd),
    cached: s.cached,
    estimated: s.estimated,
    unpriced: s.unpriced,
    promptTokens: s.usage.prompt_tokens,
    completionTokens: s.usage.completion_tokens,
    keyBudgetScope,
    reserved: s.reservation?.budget,
  };
  const urgent = budgets.near(team, parts.teamBudget(team)) || (keyBudgetScope !== undefined && budgets.near(keyBudgetScope, keyBudget));
  ledger.recordEntry(entry, urgent);
}

/** A team's budget: from the config when the config defines the team, else from the admin API's; only when it sets an amount. */
function teamBudgetLookup(config: GatewayConfig, directory: KeyDirectory | undefined): (team: string) => ScopeBudget | undefined {
  const configTeams = new Map(config.teams.map((t) => [t.name, t]));
  return (team) => {
    const b = configTeams.has(team) ? configTeams.get(team)!.budget : directory?.team(team)?.budget;
    return b && (b.daily_usd !== undefined || b.monthly_usd !== undefined) ? b : undefined;
  };
}

export function createTenancy(config: GatewayConfig, deps: TenancyDeps): GatewayTenancy {
  const { redis, metrics } = deps;
  const now = deps.now ?? Date.now;
  const log = deps.logger ?? silentLogger;
  const keyRing = createKeyRing(config.auth, deps.directory, now);
  const rules = new RuleSet(config, { redis, expectedReplicas: config.rate_limit.expected_replicas, onFallback: (scope) => metrics.rateLimitFallbacks.inc({ scope }) }, deps.directory);
  const redisError = redisErrorReporter(metrics, log, now);
  const spend = createSpend(deps, redisError);
  const budgets = new ScopeBudgets(spend, redis, metrics, now, redisError);
  const teamBudget = teamBudgetLookup(config, deps.directory);
  const parts: AdmitParts = { rules, budgets, teamBudget, sink: deps.sink, metrics, now };
  const release = (principal: Principal, reservation: TokenReservation | undefined): void => {
    settleTokens(rules, principal, reservation?.model ?? '', 0, reservation);
    releaseBudget(parts, principal, reservation?.budget);
  };

  return {
    authenticate(authorization) {
      const r = keyRing.resolve(authorization);
      if (typeof r === 'string') {
        metrics.authFailures.inc({ reason: r });
        throw authError(r);
      }
      return r;
    },
    isAdmin: (authorization) => keyRing.isAdmin(authorization),
    adminId: (authorization) => keyRing.adminId(authorization),
    admit(principal: Principal, model: string, expectedTokens = 0, maxCostUsd = 0) {
      // A refusal is a rejection, as it always was; an admission is there at once when no limit or budget had to ask Redis.
      try {
        return admitRequest(parts, principal, model, expectedTokens, maxCostUsd);
      } catch (err) {
        return Promise.reject(err);
      }
    },
    release,
    admitProvider: (provider) => admitProviderByRules(rules, metrics, provider),
    settle(s: Settlement) {
      try {
        const cost = s.cached ? 0 : Math.max(0, s.costUsd);
        countSettlement(metrics, s, cost);
        // A cache hit uses no tokens: its reservation is given back.
        settleRules(rules, s, toNanoUsd(cost));
        recordSpend(parts, spend.ledger, s, cost);
        deps.sink?.record(s, cost);
      } catch (err) {
        log.warn({ reason: (err as Error)?.message }, 'settle failed');
      }
    },
    // Token debts and unused reservations too, so a stopping replica leaves its usage counted.
    flush: () => Promise.all([spend.ledger.flush(), rules.flush().catch(() => undefined)]).then(() => undefined),
    // This replica's own spend is written first, so its report includes every request it served.
    spendReport: async (query) => {
      await spend.ledger.flush().catch(() => undefined);
      return spendReport(spend.store, query, now());
    },
    close: spend.close,
  };
}
