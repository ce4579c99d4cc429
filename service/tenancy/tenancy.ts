/**
 * The Tenancy the request handler calls: keys -> principal, rate limits, budgets, spend.
 * Built once per process by createTenancy(config, deps); with `redis: null` everything is
 * in memory (single replica, demo).
 */
import type Redis from 'ioredis';
import type { GatewayConfig, TeamConfig } from '../config/schema';
import { budgetExceeded, rateLimited } from '../core/errors';
import type { Metrics } from '../metrics/metrics';
import { errorCode, Logger, redisReady, silentLogger } from '../redis/client';
import { budgetKey, MemorySpendStore, RedisSpendStore, SpendLedger, SpendReport, SpendStore, spendReport } from '../cost/spend';
import { toNanoUsd } from '../cost/cost';
import { BudgetStatus, Period, budgetMessage, checkBudget, secondsUntilReset, utcPeriods } from './budget';
import type { Admission, Principal, Settlement, Tenancy, TokenReservation } from './contracts';
import { authError, createKeyRing } from './keys';
import { CheckResult, ScopeLimiter, keyLimitSpec, rateLimitHeaders, tightest, tokensToRecord } from './limits';

export interface TenancyDeps {
  /** null: no Redis configured (memory state). */
  redis: Redis | null;
  metrics: Metrics;
  now?: () => number;
  logger?: Logger;
  /** How often buffered spend is retried (ms). */
  flushIntervalMs?: number;
}

export interface GatewayTenancy extends Tenancy {
  /** Serves GET /v1/gateway/spend (query parameters as Express parses them). Throws GatewayError 400/503. */
  spendReport(query: Record<string, unknown>): Promise<SpendReport>;
  /** Stops the flush timer (call after flush() on shutdown). */
  close(): void;
}

interface TeamSpend {
  day: string;
  month: string;
  dayNano: number;
  monthNano: number;
}

export function createTenancy(config: GatewayConfig, deps: TenancyDeps): GatewayTenancy {
  const { redis, metrics } = deps;
  const now = deps.now ?? Date.now;
  const log = deps.logger ?? silentLogger;
  const keyRing = createKeyRing(config.auth);
  const env = { redis, expectedReplicas: config.rate_limit.expected_replicas };

  // --- limiters, built once
  const keyLimiters = new Map<string, ScopeLimiter>();
  for (const k of config.auth.keys) keyLimiters.set(k.name, new ScopeLimiter(keyLimitSpec(k.rate_limit, config.rate_limit), env, 'rl:key'));
  const defaultKeyLimiter = new ScopeLimiter(keyLimitSpec(undefined, config.rate_limit), env, 'rl:key');
  const teams = new Map<string, TeamConfig>(config.teams.map((t) => [t.name, t]));
  const teamLimiters = new Map<string, ScopeLimiter>();
  for (const t of config.teams) if (t.rate_limit) teamLimiters.set(t.name, new ScopeLimiter(t.rate_limit, env, 'rl:team'));
  const providerLimiters = new Map<string, ScopeLimiter>();
  for (const p of config.providers) {
    if (p.rate_limit) providerLimiters.set(p.name, new ScopeLimiter({ requests_per_minute: p.rate_limit.requests_per_minute, burst: 0 }, env, 'rl:provider'));
  }

  // --- spend
  const store: SpendStore = redis ? new RedisSpendStore(redis) : new MemorySpendStore();
  let lastErrorLog = 0;
  const redisError = (operation: string, err: unknown) => {
    metrics.redisErrors.inc({ operation });
    const t = now();
    if (t - lastErrorLog > 10_000) {
      lastErrorLog = t;
      log.warn({ operation, reason: errorCode(err) }, 'redis call failed; falling back');
    }
  };
  const ledger = new SpendLedger(store, {
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

  /** Last known spend per team, plus this replica's own spend since: the budget basis while Redis is down. */
  const known = new Map<string, TeamSpend>();
  const localSpend = (team: string, at: number): TeamSpend => {
    const { day, month } = utcPeriods(at);
    let s = known.get(team);
    if (!s || s.month !== month) s = { day, month, dayNano: 0, monthNano: 0 };
    else if (s.day !== day) s = { ...s, day, dayNano: 0 };
    known.set(team, s);
    return s;
  };

  /**
   * Budget reads in flight, by team and period: admissions arriving while one is out share it
   * (single flight), so a burst of requests costs one Redis read, not one each. A shared read
   * is at most one round trip old, which the in-flight overshoot bound already covers.
   */
  const budgetReads = new Map<string, Promise<{ day: number; month: number }>>();
  function readStoredBudget(team: string, day: string, month: string): Promise<{ day: number; month: number }> {
    const k = `${team}\u0000${day}`;
    let p = budgetReads.get(k);
    if (!p) {
      p = store.readBudget(team, day, month).finally(() => budgetReads.delete(k));
      budgetReads.set(k, p);
    }
    return p;
  }

  async function readTeamSpend(team: string, at: number): Promise<{ day: number; month: number }> {
    const { day, month } = utcPeriods(at);
    if (!redis || redisReady(redis)) {
      try {
        const stored = await readStoredBudget(team, day, month);
        // Plus this replica's spend not yet sent (at most one write behind).
        const key = budgetKey(team, month);
        const spent = { day: stored.day + ledger.unsent(key, `d:${day}`), month: stored.month + ledger.unsent(key, 'm') };
        known.set(team, { day, month, dayNano: spent.day, monthNano: spent.month });
        return spent;
      } catch (err) {
        redisError('budget_read', err);
      }
    }
    const s = localSpend(team, at);
    return { day: s.dayNano, month: s.monthNano };
  }

  function exportBudget(team: string, status: BudgetStatus): void {
    for (const period of ['daily', 'monthly'] as Period[]) {
      const ratio = status.ratios[period];
      if (ratio === undefined) continue;
      metrics.budgetUsedRatio.set({ team, period }, ratio);
      metrics.budgetAlert.set({ team, period }, status.alerts[period] ? 1 : 0);
    }
  }

  async function checkTeamBudget(team: string): Promise<void> {
    const budget = teams.get(team)?.budget;
    if (!budget || (budget.daily_usd === undefined && budget.monthly_usd === undefined)) return;
    const status = checkBudget(budget, await readTeamSpend(team, now()));
    exportBudget(team, status);
    if (status.refused) {
      metrics.budgetRejections.inc({ team, period: status.refused });
      throw budgetExceeded(budgetMessage(team, status.refused, budget), secondsUntilReset(status.refused, now()));
    }
  }

  /** Adds a finished request's tokens to its key and team windows, net of its reservation. */
  function recordTokens(principal: Principal, actual: number, reservation: TokenReservation | undefined, at: number): void {
    const tokens = tokensToRecord(actual, reservation, at);
    void (keyLimiters.get(principal.keyName) ?? defaultKeyLimiter).spendTokens(principal.keyName, tokens);
    void teamLimiters.get(principal.team)?.spendTokens(principal.team, tokens);
  }

  function release(principal: Principal, reservation: TokenReservation | undefined): void {
    if (reservation) recordTokens(principal, 0, reservation, now());
  }

  function refuse(scope: string, kind: 'requests' | 'tokens', result: CheckResult, headers: Record<string, string>): never {
    metrics.rateLimited.inc({ scope, kind });
    const what = kind === 'requests' ? `${result.state.limit} requests per minute` : `${result.state.limit} tokens per minute`;
    throw rateLimited(`Rate limit reached for this ${scope === 'key' ? 'API key' : scope}: ${what}. Retry after the time in the Retry-After header.`, result.state.resetMs / 1000, headers);
  }

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

    async admit(principal: Principal, _model: string, expectedTokens = 0): Promise<Admission> {
      const keyLimiter = keyLimiters.get(principal.keyName) ?? defaultKeyLimiter;
      const teamLimiter = teamLimiters.get(principal.team);
      // Issued together: with auto-pipelining they share one Redis round trip.
      const budgetCheck = checkTeamBudget(principal.team).then(
        () => null,
        (err: unknown) => err,
      );
      const [keyReq, teamReq, keyTok, teamTok] = await Promise.all([
        keyLimiter.takeRequest(principal.keyName),
        teamLimiter?.takeRequest(principal.team) ?? null,
        keyLimiter.reserveTokens(principal.keyName, expectedTokens),
        teamLimiter?.reserveTokens(principal.team, expectedTokens) ?? null,
      ]);
      const reservation = keyTok || teamTok ? { tokens: Math.max(0, Math.ceil(expectedTokens)), until: now() + Math.min(keyTok?.state.resetMs ?? Infinity, teamTok?.state.resetMs ?? Infinity) } : undefined;
      const requests = tightest([keyReq?.state, teamReq?.state]);
      try {
        // A refused request reserves nothing: its headers show the tokens without it.
        const tokens = tightest([keyTok?.unreserved, teamTok?.unreserved]);
        if (keyReq && !keyReq.ok) refuse('key', 'requests', keyReq, rateLimitHeaders(keyReq.state, tokens));
        if (teamReq && !teamReq.ok) refuse('team', 'requests', teamReq, rateLimitHeaders(teamReq.state, tokens));
        if (keyTok && !keyTok.ok) refuse('key', 'tokens', keyTok, rateLimitHeaders(requests, keyTok.unreserved));
        if (teamTok && !teamTok.ok) refuse('team', 'tokens', teamTok, rateLimitHeaders(requests, teamTok.unreserved));
        const budgetError = await budgetCheck;
        if (budgetError) throw budgetError;
      } catch (err) {
        release(principal, reservation);
        throw err;
      }
      return { headers: rateLimitHeaders(requests, tightest([keyTok?.state, teamTok?.state])), reservation };
    },

    release,

    async admitProvider(provider) {
      const limiter = providerLimiters.get(provider);
      if (!limiter) return true;
      const r = await limiter.takeRequest(provider);
      if (r && !r.ok) {
        metrics.rateLimited.inc({ scope: 'provider', kind: 'requests' });
        return false;
      }
      return true;
    },

    settle(s: Settlement) {
      try {
        const { team, project } = s.principal;
        const labels = { provider: s.provider, model: s.model, team, project };
        const cost = s.cached ? 0 : Math.max(0, s.costUsd);
        if (cost > 0) metrics.cost.inc({ ...labels, estimated: String(s.estimated) }, cost);
        // A cache hit uses no tokens: its reservation is given back.
        recordTokens(s.principal, s.cached ? 0 : s.usage.prompt_tokens + s.usage.completion_tokens, s.reservation, s.at);
        if (s.cached) {
          if (s.listCostUsd > 0) metrics.savings.inc({ model: s.model, team, project, reason: 'cache' }, s.listCostUsd);
        } else {
          if (s.usage.prompt_tokens > 0) metrics.tokens.inc({ ...labels, direction: 'input' }, s.usage.prompt_tokens);
          if (s.usage.completion_tokens > 0) metrics.tokens.inc({ ...labels, direction: 'output' }, s.usage.completion_tokens);
          if (s.listCostUsd > cost) metrics.savings.inc({ model: s.model, team, project, reason: 'routing' }, s.listCostUsd - cost);
        }
        const at = s.at;
        const { day, month } = utcPeriods(at);
        const local = localSpend(team, at);
        const nano = toNanoUsd(cost);
        local.dayNano += nano;
        local.monthNano += nano;
        ledger.recordEntry({
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
        });
      } catch (err) {
        log.warn({ reason: (err as Error)?.message }, 'settle failed');
      }
    },

    flush: () => ledger.flush(),

    spendReport: (query) => spendReport(store, query, now()),

    close() {
      clearInterval(timer);
      redis?.off('ready', flushSoon);
    },
  };
}
