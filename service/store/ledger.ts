/**
 * The spend ledger on PostgreSQL: one row per settled request, appended in batches.
 *
 * Rows wait in a bounded in-memory spool and go out as multi-row INSERTs of up to `batchRows`
 * every `flushMs` (at once when a batch is full). While PostgreSQL is unreachable the spool
 * keeps them and the write is retried every `retryMs`; `aigw_ledger_spool_rows` shows how many
 * wait. Each row's id is made when the request settles, and the INSERT is ON CONFLICT (id) DO
 * NOTHING, so a batch re-sent after a write whose outcome was unknown (a timeout) is written
 * once. When the spool is full, admission refuses new requests with 503 (full()): no request is
 * served that the ledger cannot record.
 */
import { randomUUID } from 'node:crypto';
import { Counter, Gauge, Registry } from 'prom-client';
import { toNanoUsd } from '../cost/cost';
import type { Settlement, SpendSink } from '../tenancy/contracts';
import type { Queryable } from './db';

export interface LedgerRow {
  id: string;
  at: number;
  request_id: string | null;
  key_id: string | null;
  key_name: string;
  team: string;
  project: string;
  model: string;
  provider: string;
  prompt_tokens: number;
  completion_tokens: number;
  cost_nano: number;
  list_cost_nano: number;
  cached: boolean;
  estimated: boolean;
}

export interface LedgerOptions {
  maxRows?: number;
  batchRows?: number;
  flushMs?: number;
  retryMs?: number;
  registry?: Registry;
  onError?: (err: unknown) => void;
}

/** The ledger row of one settled request (pure but for the id). */
export function ledgerRow(s: Settlement, costUsd: number, id: string = randomUUID()): LedgerRow {
  return {
    id,
    at: s.at,
    request_id: s.requestId ?? null,
    key_id: s.principal.keyId ?? null,
    key_name: s.principal.keyName,
    team: s.principal.team,
    project: s.principal.project,
    model: s.model,
    provider: s.provider,
    prompt_tokens: s.cached ? 0 : Math.round(s.usage.prompt_tokens),
    completion_tokens: s.cached ? 0 : Math.round(s.usage.completion_tokens),
    cost_nano: toNanoUsd(costUsd),
    list_cost_nano: toNanoUsd(Math.max(0, s.listCostUsd)),
    cached: s.cached,
    estimated: s.estimated,
  };
}

const COLUMNS: Array<[keyof LedgerRow, string]> = [
  ['id', 'text'],
  ['at', 'timestamptz'],
  ['request_id', 'text'],
  ['key_id', 'text'],
  ['key_name', 'text'],
  ['team', 'text'],
  ['project', 'text'],
  ['model', 'text'],
  ['provider', 'text'],
  ['prompt_tokens', 'bigint'],
  ['completion_tokens', 'bigint'],
  ['cost_nano', 'bigint'],
  ['list_cost_nano', 'bigint'],
  ['cached', 'boolean'],
  ['estimated', 'boolean'],
];

const INSERT = `INSERT INTO spend_ledger (${COLUMNS.map(([c]) => c).join(', ')})
SELECT * FROM unnest(${COLUMNS.map(([, t], i) => `$${i + 1}::${t}[]`).join(', ')})
ON CONFLICT (id) DO NOTHING`;

/** Writes rows in one statement (one array parameter per column); rows already written are skipped. */
export async function insertRows(db: Queryable, rows: readonly LedgerRow[]): Promise<void> {
  const params = COLUMNS.map(([c]) => rows.map((r) => (c === 'at' ? new Date(r.at).toISOString() : r[c])));
  await db.query(INSERT, params);
}

export class PgLedger implements SpendSink {
  private spool: LedgerRow[] = [];
  private writing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | undefined;
  private failingSince = 0;
  private readonly maxRows: number;
  private readonly batchRows: number;
  private readonly spoolGauge: Gauge;
  private readonly written: Counter;
  private readonly failures: Counter;

  constructor(
    private readonly db: Queryable,
    private readonly opts: LedgerOptions = {},
  ) {
    this.maxRows = opts.maxRows ?? 100_000;
    this.batchRows = opts.batchRows ?? 500;
    const registers = opts.registry ? [opts.registry] : [];
    this.spoolGauge = new Gauge({ name: 'aigw_ledger_spool_rows', help: 'Spend rows waiting in memory for the PostgreSQL ledger', registers });
    new Gauge({ name: 'aigw_ledger_spool_capacity_rows', help: 'Rows the ledger spool holds before admission refuses requests (503)', registers }).set(this.maxRows);
    this.written = new Counter({ name: 'aigw_ledger_rows_written_total', help: 'Spend rows written to the PostgreSQL ledger', registers });
    this.failures = new Counter({ name: 'aigw_ledger_write_failures_total', help: 'Ledger batch writes that failed (retried)', registers });
  }

  get spooled(): number {
    return this.spool.length;
  }

  full(): boolean {
    return this.spool.length >= this.maxRows;
  }

  record(s: Settlement, costUsd: number): void {
    this.spool.push(ledgerRow(s, costUsd));
    this.spoolGauge.set(this.spool.length);
    if (this.spool.length >= this.batchRows && !this.failingSince) void this.write();
    else this.schedule(this.failingSince ? (this.opts.retryMs ?? 1_000) : (this.opts.flushMs ?? 200));
  }

  private schedule(ms: number): void {
    if (this.timer || this.spool.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.write();
    }, ms);
    this.timer.unref();
  }

  /** Writes batches until the spool is empty or a write fails (then retries later). One writer at a time. */
  private write(): Promise<void> {
    this.writing ??= this.drain().finally(() => {
      this.writing = null;
      this.schedule(this.failingSince ? (this.opts.retryMs ?? 1_000) : (this.opts.flushMs ?? 200));
    });
    return this.writing;
  }

  private async drain(): Promise<void> {
    while (this.spool.length > 0) {
      const batch = this.spool.slice(0, this.batchRows);
      try {
        await insertRows(this.db, batch);
      } catch (err) {
        this.failingSince ||= Date.now();
        this.failures.inc();
        this.opts.onError?.(err);
        return;
      }
      this.failingSince = 0;
      this.spool.splice(0, batch.length);
      this.written.inc(batch.length);
      this.spoolGauge.set(this.spool.length);
    }
  }

  /** Writes everything spooled (for shutdown and before a report); resolves false when rows are left after `attempts` tries. */
  async flush(attempts = 1): Promise<boolean> {
    for (let i = 0; i < attempts && this.spool.length > 0; i++) {
      if (this.writing) await this.writing;
      if (this.spool.length > 0) await this.write();
    }
    return this.spool.length === 0;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
