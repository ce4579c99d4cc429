/**
 * GET /v1/gateway/spend when the store is on: the ledger summed over a date range, grouped by
 * any of team, project, key, model, provider, day; as JSON or CSV.
 */
import { badRequest } from '../core/errors';
import { NANO } from '../cost/cost';
import { parseSpendQuery } from '../cost/spend';
import type { Queryable } from './db';

export const GROUPS = {
  team: 'team',
  project: 'project',
  key: 'COALESCE(key_id, key_name)',
  model: 'model',
  provider: 'provider',
  day: `to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
} as const;
export type Group = keyof typeof GROUPS;

const FILTERS = { team: 'team', project: 'project', key: 'COALESCE(key_id, key_name)', model: 'model', provider: 'provider' } as const;

export interface LedgerQuery {
  from: string;
  to: string;
  groupBy: Group[];
  filters: Partial<Record<keyof typeof FILTERS, string>>;
}

export interface LedgerFigures {
  requests: number;
  cached_requests: number;
  estimated_requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number;
  list_cost_usd: number;
}

const FIGURES: Array<keyof LedgerFigures> = ['requests', 'cached_requests', 'estimated_requests', 'prompt_tokens', 'completion_tokens', 'cost_usd', 'list_cost_usd'];

/** Validates the query parameters (dates as the Redis report takes them: YYYY-MM-DD, inclusive). */
export function parseLedgerQuery(raw: Record<string, unknown>, now: number): LedgerQuery {
  const { query } = parseSpendQuery({ ...raw, key: undefined, group_by: undefined, format: undefined }, now);
  const groupRaw = raw.group_by ?? 'team';
  if (typeof groupRaw !== 'string') throw badRequest('"group_by" must be given once, as a comma-separated list.', 'invalid_parameter', 'group_by');
  const groupBy = groupRaw === '' ? [] : groupRaw.split(',').map((g) => g.trim());
  for (const g of groupBy) if (!(g in GROUPS)) throw badRequest(`"group_by" takes ${Object.keys(GROUPS).join(', ')}; got "${g.slice(0, 40)}".`, 'invalid_parameter', 'group_by');
  const filters: LedgerQuery['filters'] = {};
  for (const f of Object.keys(FILTERS) as Array<keyof typeof FILTERS>) {
    const v = raw[f];
    if (v === undefined || v === '') continue;
    if (typeof v !== 'string') throw badRequest(`"${f}" must be given once, as a string.`, 'invalid_parameter', f);
    filters[f] = v;
  }
  return { from: query.from!, to: query.to!, groupBy: [...new Set(groupBy)] as Group[], filters };
}

const toUsd = (nano: unknown) => Number(nano ?? 0) / NANO;

/** The rows of the report, one per group (one in all when groupBy is empty). */
export async function ledgerReport(db: Queryable, q: LedgerQuery): Promise<{ totals: LedgerFigures; data: Array<Record<string, string> & LedgerFigures> }> {
  const params: unknown[] = [`${q.from}T00:00:00Z`, `${q.to}T00:00:00Z`];
  const where = [`at >= $1::timestamptz`, `at < $2::timestamptz + interval '1 day'`];
  for (const [f, v] of Object.entries(q.filters)) {
    params.push(v);
    where.push(`${FILTERS[f as keyof typeof FILTERS]} = $${params.length}`);
  }
  const cols = q.groupBy.map((g) => `${GROUPS[g]} AS "${g}"`);
  const sql = `SELECT ${[...cols, 'count(*) AS requests', 'count(*) FILTER (WHERE cached) AS cached_requests', 'count(*) FILTER (WHERE estimated) AS estimated_requests', 'sum(prompt_tokens) AS prompt_tokens', 'sum(completion_tokens) AS completion_tokens', 'sum(cost_nano) AS cost_nano', 'sum(list_cost_nano) AS list_cost_nano'].join(', ')}
FROM spend_ledger WHERE ${where.join(' AND ')}${q.groupBy.length ? ` GROUP BY ${q.groupBy.map((_, i) => i + 1).join(', ')} ORDER BY ${q.groupBy.map((_, i) => i + 1).join(', ')}` : ''}`;
  const rows = await db.query<Record<string, unknown>>(sql, params);
  const data = rows
    .filter((r) => Number(r.requests) > 0)
    .map((r) => {
      const out: Record<string, unknown> = {};
      for (const g of q.groupBy) out[g] = String(r[g]);
      Object.assign(out, {
        requests: Number(r.requests),
        cached_requests: Number(r.cached_requests),
        estimated_requests: Number(r.estimated_requests),
        prompt_tokens: Number(r.prompt_tokens ?? 0),
        completion_tokens: Number(r.completion_tokens ?? 0),
        cost_usd: toUsd(r.cost_nano),
        list_cost_usd: toUsd(r.list_cost_nano),
      });
      return out as Record<string, string> & LedgerFigures;
    });
  const totals = Object.fromEntries(FIGURES.map((f) => [f, 0])) as unknown as LedgerFigures;
  for (const r of data) for (const f of FIGURES) totals[f] += r[f];
  totals.cost_usd = Math.round(totals.cost_usd * NANO) / NANO;
  totals.list_cost_usd = Math.round(totals.list_cost_usd * NANO) / NANO;
  return { totals, data };
}

const csvCell = (v: unknown): string => {
  const s = String(v);
  // Quote what needs it; a leading = + - @ is prefixed so a spreadsheet never runs it as a formula.
  const safe = /^[=+\-@\t\r]/.test(s) && !/^-?\d/.test(s) ? `'${s}` : s;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
};

export function toCsv(groupBy: readonly string[], data: ReadonlyArray<Record<string, unknown>>): string {
  const header = [...groupBy, ...FIGURES];
  return [header.join(','), ...data.map((r) => header.map((h) => csvCell(r[h])).join(','))].join('\r\n') + '\r\n';
}
