/**
 * Admission by the limit rules: match the request's rules (rules.ts), take from each matched
 * counter (limits.ts: leased windows, so usually no Redis call), refuse with the tightest
 * headers; settle and release replace token reservations by the usage and add USD costs.
 */
import type { GatewayConfig } from '../config/schema';
import { rateLimited } from '../core/errors';
import { all, MaybePromise, then } from '../core/maybe-async';
import type { Metrics } from '../metrics/metrics';
import type { Admission, KeyDirectory, Principal, Settlement, TokenReservation } from './contracts';
import { CheckResult, LimiterEnv, RuleLimiter, rateLimitHeaders, tightest, WindowState } from './limits';
import { compileRules, describeRule, dimensionsOf, legacyRules, LimitRule, Match, matchRules, RateLimitBlock, RequestFacts, Resource, Scope } from './rules';

/** Matches are memoised per (key, team, project, model); past this many the memo starts over. */
const MEMO_MAX = 10_000;

interface Matched {
  match: Match;
  limiter: RuleLimiter;
}

/** Runtime rules (a key's or a team's limit set through the admin API), by owner and limit. */
interface RuntimeRules {
  sig: string;
  rules: LimitRule[];
}

/**
 * Every rule of the config with its counters, and the per-request matcher. Keys and teams issued
 * at runtime (the admin API's directory) bring their own `rate_limit` as rules of the same kind,
 * made on first use and replaced when their limit changes.
 */
export class RuleSet {
  private readonly requestRules: LimitRule[];
  private readonly providerRules: LimitRule[];
  private readonly limiters = new Map<LimitRule, RuleLimiter>();
  private readonly memo = new Map<string, Matched[]>();
  /** Config keys' matches by principal (frozen, one per key) and model: both bounded by the config. */
  private readonly byPrincipal = new WeakMap<Principal, Map<string, Matched[]>>();
  /** Provider rules come from the config only: matched once per provider. */
  private readonly byProvider = new Map<string, Matched[]>();
  private readonly runtime = new Map<string, RuntimeRules>();
  private readonly configTeams: ReadonlySet<string>;

  constructor(
    private readonly config: GatewayConfig,
    private readonly env: LimiterEnv,
    private readonly directory?: KeyDirectory,
  ) {
    const rules = compileRules(config);
    for (const r of rules) this.addLimiter(r);
    this.providerRules = rules.filter((r) => r.scope.provider !== undefined);
    this.requestRules = rules.filter((r) => r.scope.provider === undefined);
    this.configTeams = new Set(config.teams.map((t) => t.name));
  }

  private addLimiter(r: LimitRule): void {
    const scope = dimensionsOf(r.scope).join('_'); // the same label as the rule's refusals
    this.limiters.set(r, new RuleLimiter(r, this.env, this.env.onFallback ? () => this.env.onFallback!(scope) : undefined));
  }

  private attach = (matches: Match[]): Matched[] => matches.map((match) => ({ match, limiter: this.limiters.get(match.rule)! }));

  private runtimeOf(owner: string, rl: RateLimitBlock, scope: Scope, fallback?: RateLimitBlock): RuntimeRules {
    const sig = `${owner}=${JSON.stringify(rl)}`;
    let r = this.runtime.get(sig);
    if (!r) {
      r = { sig, rules: legacyRules(owner, rl, scope, fallback) };
      for (const rule of r.rules) this.addLimiter(rule);
      this.runtime.set(sig, r);
    }
    return r;
  }

  /** The runtime key's and runtime team's own limits, when they set any. */
  private runtimeRules(principal: Principal): RuntimeRules[] {
    const out: RuntimeRules[] = [];
    if (principal.keyId && principal.rateLimit) out.push(this.runtimeOf(`keys/${principal.keyId}.rate_limit`, principal.rateLimit, { key: principal.keyName }, this.config.rate_limit));
    const teamLimit = this.directory && !this.configTeams.has(principal.team) ? this.directory.team(principal.team)?.rate_limit : undefined;
    if (teamLimit) out.push(this.runtimeOf(`teams/${principal.team}.rate_limit`, teamLimit, { team: principal.team }));
    return out;
  }

  /** The rules a request is admitted by (not the provider ones). */
  forRequest(principal: Principal, model: string): Matched[] {
    const extra = principal.keyId || this.directory ? this.runtimeRules(principal) : [];
    // Config keys (no runtime rules): by the principal object, the same for every request of its key, with no string built.
    if (!extra.length) {
      let byModel = this.byPrincipal.get(principal);
      if (!byModel) this.byPrincipal.set(principal, (byModel = new Map()));
      let m = byModel.get(model);
      if (!m) {
        if (byModel.size >= MEMO_MAX) byModel.clear();
        byModel.set(model, (m = this.match(principal, model, extra)));
      }
      return m;
    }
    const k = `${principal.keyName}\u0000${principal.team}\u0000${principal.project}\u0000${model}${extra.map((r) => `\u0000${r.sig}`).join('')}`;
    let m = this.memo.get(k);
    if (!m) {
      if (this.memo.size >= MEMO_MAX) this.memo.clear();
      this.memo.set(k, (m = this.match(principal, model, extra)));
    }
    return m;
  }

  private match(principal: Principal, model: string, extra: RuntimeRules[]): Matched[] {
    const facts: RequestFacts = { key: principal.keyName, team: principal.team, project: principal.project, model };
    const rules = extra.length ? [...this.requestRules, ...extra.flatMap((r) => r.rules)] : this.requestRules;
    return this.attach(matchRules(rules, facts));
  }

  /** The rules an attempt on a provider is admitted by. */
  forProvider(provider: string): Matched[] {
    let m = this.byProvider.get(provider);
    if (!m) this.byProvider.set(provider, (m = this.attach(matchRules(this.providerRules, { key: '', team: '', project: '', provider }))));
    return m;
  }

  flush(): Promise<void> {
    return Promise.all([...this.limiters.values()].map((l) => l.flush())).then(() => undefined);
  }
}

/** How much of a rule's resource admission takes for one request. */
export const admissionAmount = (resource: Resource, expectedTokens: number): number => (resource === 'requests' ? 1 : resource === 'tokens' ? Math.max(0, Math.ceil(expectedTokens)) : 0);

const unreserved = (s: WindowState, amount: number): WindowState => ({ ...s, remaining: Math.min(s.limit, s.remaining + amount) });

/** The headers of a response: the tightest requests window and the tightest tokens window. */
function headersOf(matched: Matched[], results: Array<CheckResult | null>, tokensFree: number): Record<string, string> {
  // tokensFree: a refused request's tokens, given back to the rules that had taken them.
  const of = (res: Resource) =>
    tightest(matched.map((m, i) => (m.match.rule.resource === res && results[i] ? (res === 'tokens' && results[i]!.ok ? unreserved(results[i]!.state, tokensFree) : results[i]!.state) : undefined)));
  return rateLimitHeaders(of('requests'), of('tokens'));
}

function refuse(metrics: Metrics, m: Match, r: CheckResult, headers: Record<string, string>): never {
  metrics.rateLimited.inc({ scope: m.scopeLabel, kind: m.rule.resource });
  const whose = m.scopeLabel === 'key' ? 'this API key' : `this ${m.scopeLabel.replace(/_/g, ' x ')}`;
  throw rateLimited(`Rate limit reached for ${whose}: ${describeRule(m.rule)}. Retry after the time in the Retry-After header.`, r.state.resetMs / 1000, headers);
}

/**
 * Takes one request from every matched rule (tokens: the expected tokens), issued together so
 * that any leases among them share one Redis round trip (auto-pipelining); refuses by the first
 * spent rule, giving back what it took of tokens and USD. Errors of every store admit.
 */
export function admitByRules(rules: RuleSet, metrics: Metrics, principal: Principal, model: string, expectedTokens: number, at: number): MaybePromise<Admission & { release(): void }> {
  const matched = rules.forRequest(principal, model);
  const tokens = admissionAmount('tokens', expectedTokens);
  const amounts = matched.map((m) => admissionAmount(m.match.rule.resource, expectedTokens));
  return then(all(matched.map((m, i) => m.limiter.take(m.match.counter, amounts[i]))), (results) => decideByRules(rules, metrics, principal, model, { matched, amounts, results, tokens, at }));
}

interface Taken {
  matched: Matched[];
  amounts: number[];
  results: Array<CheckResult | null>;
  tokens: number;
  at: number;
}

/** Admits with the rules' reservation, or refuses by the first spent rule, giving back what the others took. */
function decideByRules(rules: RuleSet, metrics: Metrics, principal: Principal, model: string, t: Taken): Admission & { release(): void } {
  const { matched, amounts, results, tokens, at } = t;
  const reservation = reservationOf(matched, results, tokens, at, model);
  const release = () => settleTokens(rules, principal, model, 0, reservation);
  const refused = results.findIndex((r) => r !== null && !r.ok);
  if (refused >= 0) {
    // A refused request takes nothing from any rule (one team's refused traffic must not spend a
    // shared model limit): what it took is given back. Its headers show the tokens without it.
    matched.forEach((m, i) => {
      if (results[i]?.ok && amounts[i] > 0) m.limiter.settle(m.match.counter, 0, amounts[i], at + results[i]!.state.resetMs);
    });
    refuse(metrics, matched[refused].match, results[refused]!, headersOf(matched, results, tokens));
  }
  return { headers: headersOf(matched, results, 0), reservation, release };
}

/** The tokens reserved in each token rule's window, with the end of that window. */
function reservationOf(matched: Matched[], results: Array<CheckResult | null>, tokens: number, at: number, model: string): TokenReservation | undefined {
  const windows: Record<string, number> = {};
  let until = Infinity;
  matched.forEach((m, i) => {
    const r = results[i];
    if (m.match.rule.resource !== 'tokens' || !r) return;
    windows[m.match.counter] = at + r.state.resetMs;
    until = Math.min(until, at + r.state.resetMs);
  });
  return until === Infinity ? undefined : { tokens, until, windows, model };
}

/** Replaces a token reservation by the actual usage in every token rule the request matched. */
export function settleTokens(rules: RuleSet, principal: Principal, model: string, actual: number, reservation: TokenReservation | undefined): void {
  const reserved = reservation?.tokens ?? 0;
  for (const m of rules.forRequest(principal, reservation?.model ?? model)) {
    if (m.match.rule.resource !== 'tokens') continue;
    // A counter the reservation was not taken in (its store did not answer) counts the whole usage.
    m.limiter.settle(m.match.counter, actual, reserved, reservation?.windows?.[m.match.counter] ?? -Infinity);
  }
}

/** Counts a settled request: its tokens against its reservation, its cost in the USD rules. */
export function settleRules(rules: RuleSet, s: Settlement, costNano: number): void {
  settleTokens(rules, s.principal, s.model, s.cached ? 0 : s.usage.prompt_tokens + s.usage.completion_tokens, s.reservation);
  if (costNano <= 0) return;
  for (const m of rules.forRequest(s.principal, s.reservation?.model ?? s.model)) {
    if (m.match.rule.resource === 'usd') m.limiter.settle(m.match.counter, costNano, 0, -Infinity);
  }
}

/** One attempt on a provider: false when one of its rules is spent (at once while every lease has units). */
export function admitProviderByRules(rules: RuleSet, metrics: Metrics, provider: string, from = 0): MaybePromise<boolean> {
  const matched = rules.forProvider(provider);
  for (let i = from; i < matched.length; i++) {
    const m = matched[i];
    const r = m.limiter.take(m.match.counter, 1);
    if (r instanceof Promise) return r.then((x) => (spentFor(metrics, x) ? false : admitProviderByRules(rules, metrics, provider, i + 1)));
    if (spentFor(metrics, r)) return false;
  }
  return true;
}

function spentFor(metrics: Metrics, r: CheckResult | null): boolean {
  if (!r || r.ok) return false;
  metrics.rateLimited.inc({ scope: 'provider', kind: 'requests' });
  return true;
}
