/**
 * Routing strategies as pure functions: (candidates, stats, prices, random) -> ordered plan.
 * The head of the plan is tried first; the tail is the fallback chain. Candidates whose
 * circuit is open are removed before a strategy sees them.
 */
import type { StrategyName } from '../config/schema';
import type { Candidate } from './catalog';
import type { ProviderStats } from './provider-stats';

export interface PlanContext {
  strategy: StrategyName;
  stats: (c: Candidate) => ProviderStats;
  random: () => number;
  /** Expected token mix of this request, to weigh input and output prices. */
  expectedTokens: { input: number; output: number };
  /** Latency that matters: time to first byte for streams, total for the rest. */
  latencyMetric: 'ttfbMs' | 'totalMs';
  weights?: Record<string, number>;
  order?: string[];
  balanced: { price: number; latency: number; errors: number };
  /** When this plan is made (ms, the injected clock), for re-probing quiet providers. */
  now: number;
  /** latency-optimal's measuring of the providers it does not currently prefer. */
  exploration: Exploration;
}

export interface Exploration {
  /** Share of plans (0..1) whose head is a random one of the non-fastest candidates. */
  share: number;
  /** A candidate not heard from (success or failure) for this long goes first once, to be re-measured. */
  reprobeAfterMs: number;
}

export const expectedCost = (c: Candidate, t: { input: number; output: number }): number => (c.inputPerMillion * t.input + c.outputPerMillion * t.output) / 1e6;

const byKey = (key: (c: Candidate) => number) => (a: Candidate, b: Candidate) => key(a) - key(b) || a.order - b.order;

/** For the balanced score: unmeasured providers rank as fast as the fastest measured one. */
function latencyOf(candidates: Candidate[], ctx: PlanContext): Map<Candidate, number> {
  const known = candidates.map((c) => ctx.stats(c)[ctx.latencyMetric]).filter((v): v is number => v !== undefined);
  const floor = known.length ? Math.min(...known) : 0;
  return new Map(candidates.map((c) => [c, ctx.stats(c)[ctx.latencyMetric] ?? floor]));
}

/** Cheapest first; unpriced candidates (cost unknown, not free) after every priced one. */
function costOptimal(cs: Candidate[], ctx: PlanContext): Candidate[] {
  return [...cs].sort(byKey((c) => (c.unpriced ? Infinity : expectedCost(c, ctx.expectedTokens))));
}

/** When the gateway last tried a candidate or heard from it; undefined: never. */
function lastTried(s: ProviderStats): number | undefined {
  const times = [s.lastAttemptAt, s.lastSuccessAt, s.lastFailureAt].filter((t): t is number => t !== undefined);
  return times.length ? Math.max(...times) : undefined;
}

/**
 * The candidate latency-optimal puts first to measure it, if any: one never tried (config
 * order); else the one tried longest ago, once that is reprobeAfterMs ago; else, with
 * probability `share`, a random one of the others. `ranked` is fastest first. A probe counts
 * as a try when it starts, so concurrent requests do not all go to the provider being probed.
 */
export function explorationPick(ranked: Candidate[], ctx: PlanContext): Candidate | undefined {
  const neverTried = ranked.find((c) => {
    const s = ctx.stats(c);
    return s.samples === 0 && s.lastAttemptAt === undefined && s[ctx.latencyMetric] === undefined;
  });
  if (neverTried) return neverTried;
  const others = ranked.slice(1);
  let quietest: Candidate | undefined;
  let quietestAt = Infinity;
  for (const c of others) {
    const at = lastTried(ctx.stats(c));
    if (at !== undefined && at < quietestAt) [quietest, quietestAt] = [c, at];
  }
  if (quietest && ctx.now - quietestAt >= ctx.exploration.reprobeAfterMs) return quietest;
  if (others.length && ctx.random() < ctx.exploration.share) return others[Math.floor(ctx.random() * others.length)];
  return undefined;
}

/**
 * Lowest measured latency first; candidates without a latency (being probed, or only failures so far) last.
 * explorationPick may move one candidate to the head so it gets (re)measured.
 */
function latencyOptimal(cs: Candidate[], ctx: PlanContext): Candidate[] {
  const ranked = [...cs].sort(byKey((c) => ctx.stats(c)[ctx.latencyMetric] ?? Infinity));
  const probe = explorationPick(ranked, ctx);
  return probe ? [probe, ...ranked.filter((c) => c !== probe)] : ranked;
}

/** Score = w_price * price/maxPrice + w_latency * latency/maxLatency + w_errors * errorRate; lower wins. */
export function balancedScores(cs: Candidate[], ctx: PlanContext): Map<Candidate, number> {
  const lat = latencyOf(cs, ctx);
  const known = new Map(cs.filter((c) => !c.unpriced).map((c) => [c, expectedCost(c, ctx.expectedTokens)]));
  const maxPrice = Math.max(0, ...known.values()) || 1;
  // An unpriced candidate scores as the most expensive one, never as free.
  const prices = new Map(cs.map((c) => [c, known.get(c) ?? maxPrice]));
  const maxLat = Math.max(...lat.values()) || 1;
  const w = ctx.balanced;
  return new Map(cs.map((c) => [c, (w.price * prices.get(c)!) / maxPrice + (w.latency * lat.get(c)!) / maxLat + w.errors * ctx.stats(c).errorRate]));
}

function balanced(cs: Candidate[], ctx: PlanContext): Candidate[] {
  const scores = balancedScores(cs, ctx);
  return [...cs].sort(byKey((c) => scores.get(c)!));
}

/** Weighted sampling without replacement: every position is drawn in proportion to the weights left. */
function weighted(cs: Candidate[], ctx: PlanContext): Candidate[] {
  const weightOf = (c: Candidate) => Math.max(0, ctx.weights?.[c.provider.name] ?? c.provider.weight);
  const pool = [...cs].sort((a, b) => a.order - b.order);
  const plan: Candidate[] = [];
  while (pool.length) {
    const total = pool.reduce((sum, c) => sum + weightOf(c), 0);
    let index = 0;
    if (total > 0) {
      let r = ctx.random() * total;
      index = pool.findIndex((c) => (r -= weightOf(c)) < 0);
      if (index < 0) index = pool.findIndex((c) => weightOf(c) > 0); // r landed on the boundary
    }
    plan.push(pool.splice(index, 1)[0]);
  }
  return plan;
}

function priority(cs: Candidate[], ctx: PlanContext): Candidate[] {
  const rank = (c: Candidate) => {
    const i = ctx.order?.indexOf(c.provider.name) ?? -1;
    return i >= 0 ? i : (ctx.order?.length ?? 0) + c.provider.priority;
  };
  return [...cs].sort(byKey(rank));
}

const STRATEGY_FNS: Record<StrategyName, (cs: Candidate[], ctx: PlanContext) => Candidate[]> = {
  'cost-optimal': costOptimal,
  'latency-optimal': latencyOptimal,
  balanced,
  weighted,
  priority,
};

export function planRoute(candidates: Candidate[], ctx: PlanContext): Candidate[] {
  if (candidates.length <= 1) return [...candidates];
  return STRATEGY_FNS[ctx.strategy](candidates, ctx);
}
