/**
 * Limits as data: every limit the gateway enforces is a rule `{resource, window, capacity, burst}`
 * with a scope, matched per request (the shape of TensorZero's rate_limiting rules,
 * tensorzero-core/src/rate_limiting/mod.rs: a scope value is concrete, "each" (here "*") or,
 * left out, the total). The legacy `rate_limit` blocks (global, per key, per team, per provider)
 * compile into rules too, so one matcher and one counter type serve them all.
 *
 * Precedence: rules with the same resource, window and scope dimensions form a group; of a group,
 * only the most specific matching rule applies (a rule naming key "alice" replaces the `key: "*"`
 * rule for alice: how a key's own rate_limit overrides the global one). Rules of different groups
 * all apply, and the request is refused by the first that is spent.
 *
 * Pure: no I/O, no clock.
 */
import type { GatewayConfig } from '../config/schema';
import { LIMIT_DIMENSIONS, LIMIT_WINDOWS } from '../config/schema';

export type Resource = 'requests' | 'tokens' | 'usd';
export type Dimension = (typeof LIMIT_DIMENSIONS)[number];
export type Scope = Partial<Record<Dimension, string>>;

export interface LimitRule {
  resource: Resource;
  windowSeconds: number;
  /** Requests, tokens or nano-USD per window. */
  capacity: number;
  /** Extra allowance per BURST_WINDOWS windows, used once the window is spent (same unit). */
  burst: number;
  scope: Scope;
  /** Where it came from, for messages: "rate_limit", "auth.keys[2].rate_limit", "limits[0]". */
  source: string;
}

/** A burst pool lasts this many of its rule's windows (a one-minute rule: ten minutes, as before). */
export const BURST_WINDOWS = 10;

/** What a request is matched on. */
export interface RequestFacts {
  key: string;
  team: string;
  project: string;
  model?: string;
  provider?: string;
}

/** One matched rule and the counter it counts this request in. */
export interface Match {
  rule: LimitRule;
  /** The counter's id: its hash tag in braces, the rule's group and the request's values of its dimensions. */
  counter: string;
  /** Redis Cluster hash tag of the counter: the team's when the scope holds key, team or project (a key belongs to one team), else the counter's own. */
  tag: string;
  /** Label for metrics and messages: the scope's dimensions joined ("key", "team_model"). */
  scopeLabel: string;
}

export const dimensionsOf = (scope: Scope): Dimension[] => LIMIT_DIMENSIONS.filter((d) => scope[d] !== undefined);

/** The group a rule belongs to: same resource, window and dimensions. */
export const groupOf = (r: LimitRule): string => `${r.resource}/${r.windowSeconds}/${dimensionsOf(r.scope).join('+')}`;

/** How many dimensions the rule names by value rather than "*". */
const specificity = (r: LimitRule): number => dimensionsOf(r.scope).filter((d) => r.scope[d] !== '*').length;

/** Whether a rule applies to a request; a dimension the request does not know (no provider yet) does not match. */
export function matches(rule: LimitRule, facts: RequestFacts): boolean {
  for (const d of dimensionsOf(rule.scope)) {
    const want = rule.scope[d];
    const have = facts[d];
    if (have === undefined || (want !== '*' && want !== have)) return false;
  }
  return true;
}

/** The rules that apply to a request: per group, the most specific match (ties: the first listed). */
export function matchRules(rules: readonly LimitRule[], facts: RequestFacts): Match[] {
  const best = new Map<string, LimitRule>();
  for (const r of rules) {
    if (!matches(r, facts)) continue;
    const g = groupOf(r);
    const cur = best.get(g);
    if (!cur || specificity(r) > specificity(cur)) best.set(g, r);
  }
  return [...best.entries()].map(([group, rule]) => counterFor(group, rule, facts));
}

function counterFor(group: string, rule: LimitRule, facts: RequestFacts): Match {
  const dims = dimensionsOf(rule.scope);
  const values = dims.map((d) => `${d}=${facts[d]}`).join(',');
  const name = `${group}:${values}`;
  const tag = dims.some((d) => d === 'key' || d === 'team' || d === 'project') ? `t:${facts.team}` : name;
  return { rule, counter: `{${tag}}${name}`, tag, scopeLabel: dims.join('_') };
}

const toRule = (source: string, resource: Resource, capacity: number, burst: number, scope: Scope, windowSeconds = 60): LimitRule => ({ resource, windowSeconds, capacity, burst, scope, source });

export type RateLimitBlock = { requests_per_minute?: number; burst?: number; tokens_per_minute?: number };

/** A legacy rate_limit block as rules for one scope (burst goes with requests_per_minute). */
export function legacyRules(source: string, rl: RateLimitBlock | undefined, scope: Scope, fallback?: RateLimitBlock): LimitRule[] {
  const out: LimitRule[] = [];
  const rpmOwn = rl?.requests_per_minute !== undefined;
  const rpm = rpmOwn ? rl!.requests_per_minute : fallback?.requests_per_minute;
  const burst = (rpmOwn ? rl!.burst : fallback?.burst) ?? 0;
  if (rpm) out.push(toRule(source, 'requests', rpm, burst, scope));
  const tpm = rl?.tokens_per_minute ?? fallback?.tokens_per_minute;
  if (tpm) out.push(toRule(source, 'tokens', tpm, 0, scope));
  return out;
}

/** USD capacities are counted in nano-USD, like spend. */
const NANO = 1e9;

/** Every rule of a config: the legacy rate_limit blocks, then `limits`. */
export function compileRules(config: Pick<GatewayConfig, 'rate_limit' | 'auth' | 'teams' | 'providers' | 'limits'>): LimitRule[] {
  const rules: LimitRule[] = [...legacyRules('rate_limit', config.rate_limit, { key: '*' })];
  config.auth.keys.forEach((k, i) => {
    // A key with its own block gets rules naming it, field by field falling back to the global block.
    if (k.rate_limit) rules.push(...legacyRules(`auth.keys[${i}].rate_limit`, k.rate_limit, { key: k.name }, config.rate_limit));
  });
  config.teams.forEach((t, i) => rules.push(...legacyRules(`teams[${i}].rate_limit`, t.rate_limit, { team: t.name })));
  config.providers.forEach((p, i) => {
    if (p.rate_limit) rules.push(toRule(`providers[${i}].rate_limit`, 'requests', p.rate_limit.requests_per_minute, 0, { provider: p.name }));
  });
  config.limits.forEach((l, i) => {
    const scale = l.resource === 'usd' ? NANO : 1;
    const scope = Object.fromEntries(Object.entries(l.scope).filter(([, v]) => v !== undefined)) as Scope;
    rules.push(toRule(`limits[${i}]`, l.resource, Math.round(l.capacity * scale), Math.round(l.burst * scale), scope, LIMIT_WINDOWS[l.window]));
  });
  return rules;
}

/** A rule in words, for a 429 message: "60 requests per minute", "0.5 USD per day". */
export function describeRule(r: LimitRule): string {
  const per = Object.entries(LIMIT_WINDOWS).find(([, s]) => s === r.windowSeconds)?.[0] ?? `${r.windowSeconds} s`;
  const amount = r.resource === 'usd' ? `${r.capacity / NANO} USD` : `${r.capacity} ${r.resource}`;
  return `${amount} per ${per}`;
}
