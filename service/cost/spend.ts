/**
 * Spend accounting: per UTC day, team, project, provider and model, in integer nano-USD and
 * tokens, kept in Redis (or memory) with atomic increments.
 *
 * Layout (under the client's key prefix). Every key a settlement writes carries its team's hash
 * tag `{t:<team>}`, so one script per team stays in one Redis Cluster slot:
 *   spend:{t:<team>}:<YYYY-MM-DD>       hash  "<team>|<project>|<provider>|<model>|<metric>" -> integer
 *   budget:{t:<team>}:<YYYY-MM>         hash  "m" -> month's cost, "d:<YYYY-MM-DD>" -> day's cost (nano-USD),
 *                                       each plus the maximum cost reserved by requests not yet settled
 *   spend:{t:<team>}:seq:<writer id>    the last batch number applied from one gateway process, for that team
 *   spend-teams:<YYYY-MM-DD>            set   the teams with spend that day (for the report)
 * Keys of the release before hash tags (spend:<day>, budget:<team>:<month>) are still read, and
 * added in, until they expire (40 days for budgets), so an upgrade loses no spend of the month.
 *
 * Each process writes one batch at a time, applied by one Lua script per team, all or nothing for
 * that team, and only if its number is above the last one applied from that process for that team. Entries that arrive while a
 * write is in flight (or while Redis is unreachable) are aggregated in memory, bounded by the
 * configured teams x projects x providers x models x days, and go out as the next batch. A batch
 * whose write failed after it may have reached Redis (a timeout) is re-sent with the same
 * number, so it is applied exactly once; spend is neither lost nor counted twice.
 */
import type Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { badRequest, serviceUnavailable } from '../core/errors';
import { fromNanoUsd, toNanoUsd } from './cost';

export const METRICS = {
  cost: 'c',
  list: 'l',
  cacheSavings: 's',
  promptTokens: 'i',
  completionTokens: 'o',
  requests: 'r',
  cached: 'h',
  estimated: 'e',
  unpriced: 'u',
} as const;

const SPEND_TTL_SECONDS = 400 * 86400;
export const BUDGET_TTL_SECONDS = 40 * 86400;
const WRITER_TTL_SECONDS = 7 * 86400;
/** A process writes a day's team index again at least this often while it has spend for the team. */
const INDEX_REFRESH_MS = 60_000;

/** key -> field -> integer increment */
export type Batch = Map<string, Map<string, number>>;

/** The Redis Cluster hash tag of a team's keys (limits use the same one). */
export const teamTag = (team: string): string => `{t:${team}}`;
/** The hash holding a budget scope's (a team's, or "key:<id>") cost for a month (field "m") and its days ("d:<day>"). */
export const budgetKey = (team: string, month: string): string => `budget:${teamTag(team)}:${month}`;
/** A team's spend rows of one day. */
export const spendRowKey = (team: string, day: string): string => `spend:${teamTag(team)}:${day}`;
const seqKey = (tag: string, writer: string): string => `spend:${tag}:seq:${writer}`;
const teamsKey = (day: string): string => `spend-teams:${day}`;
/** The keys of the release before hash tags, read until they expire. */
const legacyBudgetKey = (team: string, month: string): string => `budget:${team}:${month}`;
const legacyRowKey = (day: string): string => `spend:${day}`;
/** The hash tag in a key ("{t:red}"), or "" for none. */
const tagOfKey = (key: string): string => /\{[^}]+\}/.exec(key)?.[0] ?? '';

export interface SpendEntry {
  day: string;
  month: string;
  team: string;
  project: string;
  provider: string;
  model: string;
  costUsd: number;
  listCostUsd: number;
  cached: boolean;
  estimated: boolean;
  /** A model marked `unpriced: true`, or a pass-through answer with no usage and no configured price: counted, cost 0. */
  unpriced?: boolean;
  promptTokens: number;
  completionTokens: number;
  /** A runtime key with a budget of its own: its counters ("key:<id>") grow too. */
  keyBudgetScope?: string;
  /**
   * The cost reserved at admission in these budget scopes, already in their counters for its
   * day and month: those counters get the cost minus the reservation (the spend rows the cost).
   */
  reserved?: BudgetHold;
}

/** An amount (nano-USD) held in budget scopes' counters of one day and month. */
export interface BudgetHold {
  nano: number;
  day: string;
  month: string;
  /** The scope ids ("<team>", "key:<id>") whose counters hold it. */
  scopes: readonly string[];
}

/** Adds nano-USD to a budget scope's counters of a month and one of its days (reservations, releases, settled cost). */
export function addBudget(b: Batch, scope: string, month: string, day: string, nano: number): void {
  if (!nano) return;
  const key = memoKey(budgetKeys, scope, month, budgetKey);
  add(b, key, 'm', nano);
  add(b, key, memoKey(dayFields, day, '', dayField), nano);
}

/** Keys and fields past this many per memo start it over (scopes x periods of the config and the admin API: far fewer). */
const KEY_MEMO_MAX = 10_000;
const budgetKeys = new Map<string, Map<string, string>>();
const rowKeys = new Map<string, Map<string, string>>();
const dayFields = new Map<string, Map<string, string>>();
const dayField = (day: string): string => `d:${day}`;

/**
 * `make(a, b)`, built once and then found with two lookups of strings the gateway already holds:
 * a key built anew for every request is a new string to allocate and hash (twice a request for
 * the budget hold and its settlement, once for the spend row).
 */
function memoKey(memo: Map<string, Map<string, string>>, a: string, b: string, make: (a: string, b: string) => string): string {
  let byB = memo.get(a);
  if (byB === undefined) {
    if (memo.size >= KEY_MEMO_MAX) memo.clear();
    memo.set(a, (byB = new Map()));
  }
  let k = byB.get(b);
  if (k === undefined) {
    if (byB.size >= KEY_MEMO_MAX) byB.clear();
    byB.set(b, (k = make(a, b)));
  }
  return k;
}

function add(batch: Batch, key: string, field: string, n: number): void {
  if (!n) return;
  let fields = batch.get(key);
  if (!fields) batch.set(key, (fields = new Map()));
  fields.set(field, (fields.get(field) ?? 0) + n);
}

export function mergeInto(target: Batch, source: Batch): void {
  for (const [key, fields] of source) for (const [field, n] of fields) add(target, key, field, n);
}

export const batchSize = (b: Batch): number => {
  let n = 0;
  for (const fields of b.values()) n += fields.size;
  return n;
};

type MetricCode = (typeof METRICS)[keyof typeof METRICS];
type RowFields = Record<MetricCode, string>;

/** Field-name sets kept at most (teams x projects x providers x models of the config: far fewer); past it the memo starts over. */
const FIELD_MEMO_MAX = 10_000;
let fieldMemoSize = 0;
const fieldMemo = new Map<string, Map<string, Map<string, Map<string, RowFields>>>>();

/** The map under `k` in `m`, made when missing. */
function child<V>(m: Map<string, Map<string, V>>, k: string): Map<string, V> {
  let v = m.get(k);
  if (v === undefined) m.set(k, (v = new Map()));
  return v;
}

/**
 * The spend-row field names ("team|project|provider|model|metric") of one request's row, made once
 * per row and found with four lookups of strings the gateway already holds: every request used
 * to build and hash seven new strings here.
 */
function rowFields(team: string, project: string, provider: string, model: string): RowFields {
  const byModel = child(child(child(fieldMemo, team), project), provider);
  let f = byModel.get(model);
  if (f === undefined) {
    if (++fieldMemoSize > FIELD_MEMO_MAX) {
      fieldMemo.clear();
      fieldMemoSize = 0;
    }
    const prefix = `${team}|${project}|${provider}|${model}|`;
    f = Object.fromEntries(Object.values(METRICS).map((code) => [code, prefix + code])) as RowFields;
    byModel.set(model, f);
  }
  return f;
}

/** The increments one served request contributes (pure). */
export function entryBatch(e: SpendEntry): Batch {
  return addEntry(new Map(), e);
}

/** Adds one served request's increments to a batch in place (no intermediate batch). */
export function addEntry(b: Batch, e: SpendEntry): Batch {
  const cost = e.cached ? 0 : toNanoUsd(e.costUsd);
  const list = toNanoUsd(e.listCostUsd);
  const row = memoKey(rowKeys, e.team, e.day, spendRowKey);
  const f = rowFields(e.team, e.project, e.provider, e.model);
  add(b, row, f[METRICS.cost], cost);
  add(b, row, f[METRICS.list], list);
  add(b, row, f[METRICS.requests], 1);
  if (e.cached) {
    add(b, row, f[METRICS.cacheSavings], list);
    add(b, row, f[METRICS.cached], 1);
  } else {
    add(b, row, f[METRICS.promptTokens], Math.round(e.promptTokens));
    add(b, row, f[METRICS.completionTokens], Math.round(e.completionTokens));
    if (e.estimated) add(b, row, f[METRICS.estimated], 1);
    if (e.unpriced) add(b, row, f[METRICS.unpriced], 1);
  }
  addSettledBudget(b, e.team, e, cost);
  if (e.keyBudgetScope) addSettledBudget(b, e.keyBudgetScope, e, cost);
  return b;
}

/**
 * What a settled cost adds to one budget scope's counters (pure): where the request's reservation
 * holds part of it in that scope, the difference, in the reservation's day and month; else the
 * whole cost in the settlement's. The one rule for the Redis counters and a replica's own view.
 */
export function settledBudgetShare(scope: string, hold: BudgetHold | undefined, nano: number, periods: { day: string; month: string }): { nano: number; day: string; month: string } {
  return hold && hold.scopes.includes(scope) ? { nano: nano - hold.nano, day: hold.day, month: hold.month } : { nano, day: periods.day, month: periods.month };
}

/** A settled cost in a budget scope's counters (see settledBudgetShare). */
function addSettledBudget(b: Batch, scope: string, e: SpendEntry, cost: number): void {
  const share = settledBudgetShare(scope, e.reserved, cost, e);
  addBudget(b, scope, share.month, share.day, share.nano);
}

export interface SpendStore {
  /** Applies a batch atomically, unless `seq` is not above the last batch applied from `writer`. */
  apply(batch: Batch, writer: string, seq: number): Promise<void>;
  /** The spend hash of each day, in order. */
  readDays(days: string[]): Promise<Array<Record<string, string>>>;
  /** A team's recorded cost in nano-USD for a day and its month. */
  readBudget(team: string, day: string, month: string): Promise<{ day: number; month: number }>;
}

export class MemorySpendStore implements SpendStore {
  private readonly data: Batch = new Map();

  async apply(batch: Batch): Promise<void> {
    mergeInto(this.data, batch);
  }

  async readDays(days: string[]): Promise<Array<Record<string, string>>> {
    return days.map((d) => {
      const out: Record<string, string> = {};
      for (const [key, fields] of this.data) if (key.startsWith('spend:') && key.endsWith(`:${d}`)) for (const [f, v] of fields) out[f] = String(v);
      return out;
    });
  }

  async readBudget(team: string, day: string, month: string): Promise<{ day: number; month: number }> {
    const h = this.data.get(budgetKey(team, month));
    return { day: h?.get(`d:${day}`) ?? 0, month: h?.get('m') ?? 0 };
  }
}

/**
 * KEYS[1]: the writer's sequence for the team; ARGV: seq, its TTL, the seq this writer sent for
 * the team before this one, then per key its TTL, field count and fields. Applied once (a seq
 * not above the last applied is skipped), and in order: when the last applied is not the
 * previous one sent (that batch is still missing: a client that re-sends a timed-out command
 * by itself, as a cluster client may after a failover, delivered a later one first), the
 * batch is refused with GAP and the ledger re-sends the missing one first (checked only while
 * that one is unacknowledged: ARGV[3] -1). A missing sequence key (first write, expired, or a
 * Redis that restarted empty) accepts any batch.
 */
export const APPLY_LUA = `
local stored = redis.call('get', KEYS[1])
local last = tonumber(stored or '0')
if tonumber(ARGV[1]) <= last then return 0 end
if stored and ARGV[3] ~= '-1' and last ~= tonumber(ARGV[3]) then return redis.error_reply('GAP an earlier spend batch of this writer is not applied yet') end
redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2])
local a = 4
for k = 2, #KEYS do
  local ttl = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  for j = 1, n do
    redis.call('hincrby', KEYS[k], ARGV[a], ARGV[a + 1])
    a = a + 2
  end
  redis.call('expire', KEYS[k], ttl)
end
return 1
`;

/** Adds one hash's fields into another (numbers as strings, as Redis returns them). */
function addFields(into: Record<string, string>, from: Record<string, string> | null | undefined): void {
  for (const [f, v] of Object.entries(from ?? {})) into[f] = String(Number(into[f] ?? 0) + Number(v));
}

/** The days and teams a batch writes spend rows for, as "day -> teams". */
function teamsByDay(batch: Batch): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const key of batch.keys()) {
    const m = /^spend:\{t:([^}]+)\}:(\d{4}-\d{2}-\d{2})$/.exec(key);
    if (!m) continue;
    if (!out.has(m[2])) out.set(m[2], new Set());
    out.get(m[2])!.add(m[1]);
  }
  return out;
}

export class RedisSpendStore implements SpendStore {
  /**
   * "<day>|<team>" pairs this process put in the day's team index, and when: written again after
   * INDEX_REFRESH_MS or a reconnect (a restarted Redis may have lost it), not with every batch.
   */
  private readonly indexed = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly now: () => number = Date.now,
  ) {
    redis.on('ready', () => this.indexed.clear());
  }

  private fresh(day: string, team: string): boolean {
    const at = this.indexed.get(`${day}|${team}`);
    return at !== undefined && this.now() - at < INDEX_REFRESH_MS;
  }

  private async index(day: string, teams: string[]): Promise<void> {
    await this.redis.sadd(teamsKey(day), ...teams);
    await this.redis.expire(teamsKey(day), SPEND_TTL_SECONDS);
    if (this.indexed.size > 100_000) this.indexed.clear();
    const at = this.now();
    for (const t of teams) this.indexed.set(`${day}|${t}`, at);
  }

  /**
   * One script per team (its keys share the team's hash tag, so each script stays in one Redis
   * Cluster slot), each guarded by the writer's sequence number for that team, plus the day's
   * team index. Issued together, they share a round trip (per node). A batch that fails in part
   * is re-sent whole: the teams already applied skip it by their sequence number.
   */
  async apply(batch: Batch, writer: string, seq: number): Promise<void> {
    const byTag = new Map<string, Batch>();
    for (const [key, fields] of batch) {
      const tag = tagOfKey(key);
      if (!byTag.has(tag)) byTag.set(tag, new Map());
      byTag.get(tag)!.set(key, fields);
    }
    const writes: Array<Promise<unknown>> = [...byTag].map(([tag, part]) => this.applyPart(part, tag, seqKey(tag, writer), seq));
    for (const [day, teams] of teamsByDay(batch)) {
      const stale = [...teams].filter((t) => !this.fresh(day, t));
      if (stale.length) writes.push(this.index(day, stale));
    }
    const results = await Promise.allSettled(writes);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** The last seq sent per team tag, and per (tag, seq) sent but not yet known applied, the seq sent before it. */
  private readonly lastSent = new Map<string, number>();
  private readonly prevOf = new Map<string, number>();

  private applyPart(part: Batch, tag: string, seqKeyName: string, seq: number): Promise<unknown> {
    const id = `${tag}|${seq}`;
    let prev = this.prevOf.get(id);
    if (prev === undefined) {
      prev = this.lastSent.get(tag) ?? 0;
      this.prevOf.set(id, prev);
      this.lastSent.set(tag, seq);
    }
    // Order is checked only against a previous batch still unacknowledged: one Redis acknowledged
    // and then lost (a master that died before replicating it) cannot come back, and must not
    // hold every later batch of the team (-1: no check).
    const check = prev > 0 && this.prevOf.has(`${tag}|${prev}`) ? prev : -1;
    const keys = [seqKeyName];
    const args: Array<string | number> = [seq, WRITER_TTL_SECONDS, check];
    for (const [key, fields] of part) {
      keys.push(key);
      args.push(key.startsWith('budget:') ? BUDGET_TTL_SECONDS : SPEND_TTL_SECONDS, fields.size);
      for (const [field, n] of fields) args.push(field, n);
    }
    // EVAL with the script text, not EVALSHA: after a Redis restart EVALSHA answers NOSCRIPT and
    // ioredis re-sends it as EVAL behind later writes, which breaks the in-order application the
    // sequence numbers rely on (a re-sent earlier batch would then be skipped and lost). Redis
    // caches the compiled script by its hash, so this costs only the bytes on the wire.
    return this.redis.eval(APPLY_LUA, keys.length, ...keys, ...args).then((r) => {
      this.prevOf.delete(id);
      return r;
    });
  }

  /** Each day's rows: every team in the day's index, plus the day's row of the release before hash tags. */
  async readDays(days: string[]): Promise<Array<Record<string, string>>> {
    const teams = await Promise.all(days.map((d) => this.redis.smembers(teamsKey(d))));
    return Promise.all(
      days.map(async (d, i) => {
        const rows = await Promise.all([legacyRowKey(d), ...teams[i].map((t) => spendRowKey(t, d))].map((k) => this.redis.hgetall(k)));
        const out: Record<string, string> = {};
        for (const r of rows) addFields(out, r);
        return out;
      }),
    );
  }

  async readBudget(team: string, day: string, month: string): Promise<{ day: number; month: number }> {
    const [[m, d], [lm, ld]] = await Promise.all([this.redis.hmget(budgetKey(team, month), 'm', `d:${day}`), this.redis.hmget(legacyBudgetKey(team, month), 'm', `d:${day}`)]);
    return { day: Number(d ?? 0) + Number(ld ?? 0), month: Number(m ?? 0) + Number(lm ?? 0) };
  }
}

export interface LedgerOptions {
  /** When false, writes are not attempted and entries stay in the buffer. */
  canWrite: () => boolean;
  onBuffered?: (entries: number) => void;
  onError?: (err: unknown) => void;
  /** How long a recorded entry may wait for others to share its write (ms; 0: the end of the event-loop turn). */
  coalesceMs?: number;
}

/**
 * Sends spend to a store as it is recorded, buffering what cannot be written now.
 * `record` never throws.
 *
 * Batches are numbered per process and sent in order on one connection, so Redis applies them
 * in order: if a later batch was applied, every earlier one was too, and the store can skip a
 * re-sent batch whose number is not above the last applied. After a failed write, new entries
 * wait in the buffer until the failed batches have been re-sent (in order), which keeps that
 * true across reconnects.
 */
export class SpendLedger {
  private readonly writer = randomUUID();
  private seq = 0;
  /** Entries not yet sent. */
  private buffer: Batch = new Map();
  /** Entries recorded since the last write, sent together as one write (see scheduleTick). */
  private tick: Batch = new Map();
  private tickScheduled = false;
  private coalesceTimer: NodeJS.Timeout | undefined;
  /** Batches whose write failed (maybe after reaching the store), in order, to re-send as they are. */
  private failed: Array<{ seq: number; batch: Batch }> = [];
  private readonly inflight = new Set<Promise<void>>();
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly store: SpendStore,
    private readonly opts: LedgerOptions,
  ) {}

  /** Entries (fields) held in memory, unsent or waiting to be re-sent. */
  get buffered(): number {
    return this.failed.reduce((n, f) => n + batchSize(f.batch), batchSize(this.buffer));
  }

  /** An amount not yet sent, which has certainly not reached the store (for budget checks). */
  unsent(key: string, field: string): number {
    return (this.buffer.get(key)?.get(field) ?? 0) + (this.tick.get(key)?.get(field) ?? 0);
  }

  record(batch: Batch): void {
    mergeInto(this.writable() ? this.tick : this.buffer, batch);
    this.afterRecord();
  }

  /**
   * Records one served request (adds its increments straight into the batch they go out in).
   * `urgent`: its team is close to a budget, so other replicas must see it at once: the write
   * goes out at the end of this turn instead of after the coalescing delay.
   */
  recordEntry(e: SpendEntry, urgent = false): void {
    addEntry(this.writable() ? this.tick : this.buffer, e);
    this.afterRecord(urgent);
  }

  /** Adds to a budget scope's counters only (a reservation, or its release): no spend row. `urgent` as for recordEntry. */
  recordBudget(scope: string, day: string, month: string, nano: number, urgent = false): void {
    addBudget(this.writable() ? this.tick : this.buffer, scope, month, day, nano);
    this.afterRecord(urgent);
  }

  private writable(): boolean {
    return this.failed.length === 0 && this.opts.canWrite();
  }

  private afterRecord(urgent = false): void {
    if (this.tick.size > 0) this.scheduleTick(urgent);
    else this.report();
  }

  /**
   * Requests settled within `coalesceMs` of each other share one write: one Redis call for many
   * requests instead of one each (at 1,000 requests a second and 50 ms, one call per 50). With
   * no delay configured, or for an urgent entry, the write goes out at the end of this
   * event-loop turn, shared only by the requests settled in the same turn.
   */
  private scheduleTick(urgent: boolean): void {
    const delay = this.opts.coalesceMs ?? 0;
    if (urgent || delay <= 0) {
      if (this.tickScheduled) return;
      this.tickScheduled = true;
      setImmediate(() => {
        this.tickScheduled = false;
        this.endTick();
      });
      return;
    }
    if (this.coalesceTimer) return;
    this.coalesceTimer = setTimeout(() => {
      this.coalesceTimer = undefined;
      this.endTick();
    }, delay);
    this.coalesceTimer.unref();
  }

  private endTick(): void {
    if (this.tick.size === 0) return;
    const batch = this.tick;
    this.tick = new Map();
    if (this.writable()) {
      this.send(++this.seq, batch);
      return;
    }
    mergeInto(this.buffer, batch);
    this.report();
  }

  private send(seq: number, batch: Batch): void {
    const p: Promise<void> = this.store
      .apply(batch, this.writer, seq)
      .catch((err: unknown) => {
        this.failed.push({ seq, batch });
        this.failed.sort((a, b) => a.seq - b.seq);
        this.opts.onError?.(err);
        this.report();
      })
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  private report(): void {
    this.opts.onBuffered?.(this.buffered);
  }

  /**
   * Waits for writes in flight, then re-sends failed batches and the buffer (when writable).
   * A drain already running (the retry timer's) may have started before the store came back
   * and stop at its own failures; so, while the store is writable and work is left, drain again
   * (a few rounds at most: a store that keeps failing is left to the timer).
   */
  async flush(): Promise<void> {
    for (let round = 0; round < 3; round++) {
      this.flushing ??= this.drain().finally(() => {
        this.flushing = null;
      });
      await this.flushing;
      const done = this.failed.length === 0 && this.buffer.size === 0 && this.tick.size === 0 && this.inflight.size === 0;
      if (done || !this.opts.canWrite()) return;
    }
  }

  private async drain(): Promise<void> {
    this.endTick();
    for (;;) {
      await Promise.all([...this.inflight]);
      if (!this.opts.canWrite() || (this.failed.length === 0 && this.buffer.size === 0)) break;
      const work = this.failed;
      this.failed = [];
      if (this.buffer.size > 0) {
        work.push({ seq: ++this.seq, batch: this.buffer });
        this.buffer = new Map();
      }
      for (const w of work) this.send(w.seq, w.batch); // same tick: one pipeline, in order
      await Promise.all([...this.inflight]);
      if (this.failed.length > 0) break; // still failing: the timer tries again later
    }
    this.report();
  }
}

// ---------------------------------------------------------------- the spend report

export interface SpendQuery {
  team?: string;
  project?: string;
  provider?: string;
  model?: string;
  /** YYYY-MM-DD, inclusive; defaults to the first day of `to`'s month. */
  from?: string;
  /** YYYY-MM-DD, inclusive; defaults to today (UTC). */
  to?: string;
}

export interface SpendFigures {
  requests: number;
  cached_requests: number;
  estimated_requests: number;
  /** Requests served by a model marked `unpriced: true`, and pass-through requests whose answer had no usage and whose path has no price: cost unknown, recorded as 0 (not free). */
  unpriced_requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number;
  list_cost_usd: number;
  /** list_cost_usd - cost_usd: what the gateway saved against calling each model's vendor directly. */
  savings_usd: number;
  routing_savings_usd: number;
  cache_savings_usd: number;
}

export interface SpendReport {
  from: string;
  to: string;
  filters: { team?: string; project?: string; provider?: string; model?: string };
  totals: SpendFigures;
  by_team: Array<{ team: string } & SpendFigures>;
  by_project: Array<{ team: string; project: string } & SpendFigures>;
  by_provider: Array<{ provider: string } & SpendFigures>;
  by_model: Array<{ model: string } & SpendFigures>;
  by_day: Array<{ date: string } & SpendFigures>;
}

export const MAX_REPORT_DAYS = 366;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

function parseDate(value: string, param: string): number {
  const t = Date.parse(`${value}T00:00:00Z`);
  if (!DATE.test(value) || Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== value) {
    throw badRequest(`"${param}" must be a date as YYYY-MM-DD.`, 'invalid_date', param);
  }
  return t;
}

/** Validates query parameters (as Express gives them) into a query and its list of days. */
export function parseSpendQuery(raw: Record<string, unknown>, now: number): { query: SpendQuery; days: string[] } {
  const query: SpendQuery = {};
  for (const k of ['team', 'project', 'provider', 'model', 'from', 'to'] as const) {
    const v = raw[k];
    if (v === undefined || v === '') continue;
    if (typeof v !== 'string') throw badRequest(`"${k}" must be given once, as a string.`, 'invalid_parameter', k);
    query[k] = v;
  }
  const today = new Date(now).toISOString().slice(0, 10);
  const to = parseDate(query.to ?? today, 'to');
  const from = parseDate(query.from ?? `${new Date(to).toISOString().slice(0, 7)}-01`, 'from');
  if (from > to) throw badRequest('"from" must not be after "to".', 'invalid_date_range', 'from');
  const days: string[] = [];
  for (let t = from; t <= to; t += 86_400_000) {
    days.push(new Date(t).toISOString().slice(0, 10));
    if (days.length > MAX_REPORT_DAYS) throw badRequest(`A report covers at most ${MAX_REPORT_DAYS} days.`, 'invalid_date_range', 'from');
  }
  return { query: { ...query, from: days[0], to: days[days.length - 1] }, days };
}

type Raw = Record<string, number>;

function figures(raw: Raw): SpendFigures {
  const g = (m: string) => raw[m] ?? 0;
  const cost = g(METRICS.cost);
  const list = g(METRICS.list);
  const cache = g(METRICS.cacheSavings);
  return {
    requests: g(METRICS.requests),
    cached_requests: g(METRICS.cached),
    estimated_requests: g(METRICS.estimated),
    unpriced_requests: g(METRICS.unpriced),
    prompt_tokens: g(METRICS.promptTokens),
    completion_tokens: g(METRICS.completionTokens),
    cost_usd: fromNanoUsd(cost),
    list_cost_usd: fromNanoUsd(list),
    savings_usd: fromNanoUsd(list - cost),
    routing_savings_usd: fromNanoUsd(list - cost - cache),
    cache_savings_usd: fromNanoUsd(cache),
  };
}

/** Aggregates day hashes into a report (pure). */
export function summarize(query: SpendQuery, days: string[], hashes: Array<Record<string, string>>): SpendReport {
  const totals: Raw = {};
  const groups = {
    team: new Map<string, Raw>(),
    project: new Map<string, Raw>(),
    provider: new Map<string, Raw>(),
    model: new Map<string, Raw>(),
    day: new Map<string, Raw>(),
  };
  const bump = (map: Map<string, Raw>, key: string, metric: string, n: number) => {
    let r = map.get(key);
    if (!r) map.set(key, (r = {}));
    r[metric] = (r[metric] ?? 0) + n;
  };
  hashes.forEach((hash, i) => {
    for (const [field, value] of Object.entries(hash ?? {})) {
      const parts = field.split('|');
      if (parts.length !== 5) continue;
      const [team, project, provider, model, metric] = parts;
      if ((query.team && team !== query.team) || (query.project && project !== query.project) || (query.provider && provider !== query.provider) || (query.model && model !== query.model)) continue;
      const n = Number(value);
      totals[metric] = (totals[metric] ?? 0) + n;
      bump(groups.team, team, metric, n);
      bump(groups.project, `${team}|${project}`, metric, n);
      bump(groups.provider, provider, metric, n);
      bump(groups.model, model, metric, n);
      bump(groups.day, days[i], metric, n);
    }
  });
  const rows = <K extends string>(map: Map<string, Raw>, label: (key: string) => Record<K, string>) => [...map.keys()].sort().map((k) => ({ ...label(k), ...figures(map.get(k)!) }));
  return {
    from: query.from!,
    to: query.to!,
    filters: Object.fromEntries((['team', 'project', 'provider', 'model'] as const).filter((k) => query[k]).map((k) => [k, query[k]])),
    totals: figures(totals),
    by_team: rows(groups.team, (k) => ({ team: k })),
    by_project: rows(groups.project, (k) => {
      const [team, project] = k.split('|');
      return { team, project };
    }),
    by_provider: rows(groups.provider, (k) => ({ provider: k })),
    by_model: rows(groups.model, (k) => ({ model: k })),
    by_day: rows(groups.day, (k) => ({ date: k })),
  };
}

/** GET /v1/gateway/spend: validates the query, reads the days, aggregates. 503 when the store is unreachable. */
export async function spendReport(store: SpendStore, raw: Record<string, unknown>, now: number): Promise<SpendReport> {
  const { query, days } = parseSpendQuery(raw, now);
  let hashes: Array<Record<string, string>>;
  try {
    hashes = await store.readDays(days);
  } catch {
    throw serviceUnavailable('The spend store (Redis) is unreachable right now; spend is being buffered and the report will be available when it returns.', 'spend_store_unavailable');
  }
  return summarize(query, days, hashes);
}
