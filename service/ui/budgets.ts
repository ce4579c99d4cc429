/** The teams' configured budgets, for the operator page's "budgets used" table (pure). */
import type { GatewayConfig } from '../config/schema';

export interface BudgetRow {
  team: string;
  daily_usd: number | null;
  monthly_usd: number | null;
  alert_threshold: number;
}

export interface BudgetTable {
  object: 'list';
  /** The gateway's UTC day and month: spend is counted per UTC day, budgets per UTC day and month. */
  today: string;
  month: string;
  data: BudgetRow[];
}

export function budgetTable(config: Pick<GatewayConfig, 'teams'>, now: number): BudgetTable {
  const today = new Date(now).toISOString().slice(0, 10);
  const data = config.teams
    .filter((t) => t.budget && (t.budget.daily_usd !== undefined || t.budget.monthly_usd !== undefined))
    .map((t) => ({ team: t.name, daily_usd: t.budget!.daily_usd ?? null, monthly_usd: t.budget!.monthly_usd ?? null, alert_threshold: t.budget!.alert_threshold }));
  return { object: 'list', today, month: today.slice(0, 7), data };
}
