/**
 * Budgets (of a team, or of one key issued through the admin API): pure decisions over spend
 * already recorded (integer nano-USD) and the UTC periods a timestamp falls in.
 */
import { NANO } from '../cost/cost';
import type { ScopeBudget } from './contracts';

/** Whose budget: a team's (by name) or a runtime key's (by id). Budget counters are kept per scope. */
export interface BudgetScope {
  kind: 'team' | 'key';
  /** The counter name: the team's name, or "key:<id>" (team names are DNS labels, so they never contain ':'). */
  id: string;
  /** For messages: the team's or the key's name. */
  label: string;
  /** The team the scope belongs to (the metrics label). */
  team: string;
}

export const teamScope = (team: string): BudgetScope => ({ kind: 'team', id: team, label: team, team });
export const keyScope = (keyId: string, name: string, team: string): BudgetScope => ({ kind: 'key', id: `key:${keyId}`, label: name, team });

export type Period = 'daily' | 'monthly';

const DAY_MS = 86_400_000;
/** The last day formatted (a request calls utcPeriods three times, all in the same day but once a day). */
let lastDayStart = NaN;
let lastPeriods: { readonly day: string; readonly month: string } = { day: '', month: '' };

/** UTC day (YYYY-MM-DD) and month (YYYY-MM) of a timestamp in ms. The result is shared: do not mutate it. */
export function utcPeriods(at: number): { readonly day: string; readonly month: string } {
  const dayStart = at - (((at % DAY_MS) + DAY_MS) % DAY_MS); // JS time has no leap seconds: UTC days are DAY_MS long
  if (dayStart !== lastDayStart) {
    const day = new Date(at).toISOString().slice(0, 10);
    lastPeriods = { day, month: day.slice(0, 7) };
    lastDayStart = dayStart;
  }
  return lastPeriods;
}

export interface BudgetStatus {
  /** The first period whose budget is spent (spent >= budget), or null when the request may go. */
  refused: Period | null;
  /** spent / budget per configured period. */
  ratios: Partial<Record<Period, number>>;
  /** Periods at or above the alert threshold. */
  alerts: Partial<Record<Period, boolean>>;
}

export function checkBudget(budget: ScopeBudget | undefined, spentNano: { day: number; month: number }): BudgetStatus {
  const status: BudgetStatus = { refused: null, ratios: {}, alerts: {} };
  if (!budget) return status;
  const limits: Array<[Period, number | undefined, number]> = [
    ['daily', budget.daily_usd, spentNano.day],
    ['monthly', budget.monthly_usd, spentNano.month],
  ];
  for (const [period, limitUsd, spent] of limits) {
    if (limitUsd === undefined) continue;
    const ratio = spent / (limitUsd * NANO);
    status.ratios[period] = ratio;
    status.alerts[period] = ratio >= budget.alert_threshold;
    if (ratio >= 1 && status.refused === null) status.refused = period;
  }
  return status;
}

/** Whole seconds from `at` until the period's budget resets (next UTC midnight, or the first of next month). */
export function secondsUntilReset(period: Period, at: number): number {
  const d = new Date(at);
  const next = period === 'daily' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1) : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  return Math.max(1, Math.ceil((next - at) / 1000));
}

export function budgetMessage(scope: BudgetScope, period: Period, budget: ScopeBudget): string {
  const usd = period === 'daily' ? budget.daily_usd : budget.monthly_usd;
  const resets = period === 'daily' ? 'at 00:00 UTC' : 'on the first day of next month (UTC)';
  const whose = scope.kind === 'team' ? `team "${scope.label}"` : `API key "${scope.label}"`;
  return `The ${period} budget of ${whose} ($${usd}) is spent. Requests resume when it resets ${resets}, or ask your platform team to raise it.`;
}
