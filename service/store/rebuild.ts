/**
 * Budget counters rebuilt from the ledger after Redis lost its data (FLUSHALL, a restart without
 * persistence, a failover to an empty replica).
 *
 * A marker key (budget:rebuilt:<month>) says the month's counters are in Redis. When it is
 * missing, the month's and today's cost per team and per key is summed from the ledger, and
 * each counter is raised to that sum when below it (never lowered: spend recorded in Redis but
 * not yet in the ledger stays), one single-key script per scope (each budget hash carries its
 * scope's hash tag, so this works on Redis Cluster too), then the marker is set. Raising to a sum
 * is idempotent, so replicas that notice at once do no harm. Each replica checks every
 * `intervalMs` (one EXISTS) and when Redis reconnects.
 */
import type Redis from 'ioredis';
import { budgetKey, BUDGET_TTL_SECONDS } from '../cost/spend';
import { utcPeriods } from '../tenancy/budget';
import type { Queryable } from './db';

export const rebuildMarker = (month: string): string => `budget:rebuilt:${month}`;

const RAISE_LUA = `
local dayField, dayNano, monthNano = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if tonumber(redis.call('hget', KEYS[1], 'm') or '0') < monthNano then redis.call('hset', KEYS[1], 'm', monthNano) end
if tonumber(redis.call('hget', KEYS[1], dayField) or '0') < dayNano then redis.call('hset', KEYS[1], dayField, dayNano) end
redis.call('expire', KEYS[1], ${BUDGET_TTL_SECONDS})
return 1
`;

/** Today's and this month's cost (nano-USD) per budget scope ("team" and "key:<id>"), from the ledger. */
export async function ledgerBudgets(db: Queryable, at: number): Promise<Array<{ scope: string; day: number; month: number }>> {
  const { day, month } = utcPeriods(at);
  const rows = await db.query<{ scope: string; day_nano: string | null; month_nano: string | null }>(
    `SELECT scope, sum(cost_nano) FILTER (WHERE at >= $2::timestamptz) AS day_nano, sum(cost_nano) AS month_nano
     FROM (SELECT team AS scope, at, cost_nano FROM spend_ledger WHERE at >= $1::timestamptz
           UNION ALL SELECT 'key:' || key_id, at, cost_nano FROM spend_ledger WHERE at >= $1::timestamptz AND key_id IS NOT NULL) s
     GROUP BY scope`,
    [`${month}-01T00:00:00Z`, `${day}T00:00:00Z`],
  );
  return rows.map((r) => ({ scope: r.scope, day: Number(r.day_nano ?? 0), month: Number(r.month_nano ?? 0) }));
}

/** Rebuilds the counters when the marker is missing; returns how many scopes were written (0: nothing to do). */
export async function rebuildBudgetsIfLost(db: Queryable, redis: Redis, at: number): Promise<number> {
  const { day, month } = utcPeriods(at);
  const marker = rebuildMarker(month);
  if ((await redis.exists(marker)) === 1) return 0;
  const sums = await ledgerBudgets(db, at);
  await Promise.all(sums.map((s) => redis.eval(RAISE_LUA, 1, budgetKey(s.scope, month), `d:${day}`, s.day, s.month)));
  await redis.set(marker, '1', 'EX', BUDGET_TTL_SECONDS);
  return sums.length;
}

/** Runs the check on a timer and whenever Redis is ready again; returns a stop function. */
export function watchBudgets(db: Queryable, redis: Redis, opts: { intervalMs?: number; now?: () => number; onRebuilt?: (scopes: number) => void; onError?: (err: unknown) => void }): () => void {
  const now = opts.now ?? Date.now;
  let running = false;
  const check = () => {
    if (running || redis.status !== 'ready') return;
    running = true;
    rebuildBudgetsIfLost(db, redis, now())
      .then((n) => n > 0 && opts.onRebuilt?.(n), opts.onError)
      .finally(() => (running = false));
  };
  const timer = setInterval(check, opts.intervalMs ?? 2_000);
  timer.unref();
  redis.on('ready', check);
  check();
  return () => {
    clearInterval(timer);
    redis.off('ready', check);
  };
}
