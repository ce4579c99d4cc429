/**
 * The ledger's spool against a database that fails on command: rows wait while it is down, go
 * out when it is back, a batch whose write "timed out" after landing is not written twice, and a
 * full spool makes admission refuse (503) instead of serving unaccounted requests. The database
 * is a stand-in implementing the Queryable interface over a Map (the SQL itself runs against real
 * PostgreSQL in replicas-store.test.ts and against PGlite in embedded-cli.test.ts).
 */
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import type { Queryable } from '../../service/store/db';
import { ledgerRow, PgLedger } from '../../service/store/ledger';
import type { Settlement } from '../../service/tenancy/contracts';
import { parseConfig } from '../../service/config/schema';
import { createMetrics } from '../../service/metrics/metrics';
import { createTenancy } from '../../service/tenancy/tenancy';

/** Stores rows by id like ON CONFLICT (id) DO NOTHING; `mode` decides what the next write does. */
class FakeDb implements Queryable {
  rows = new Map<string, unknown[]>();
  mode: 'up' | 'down' | 'lands-then-fails' = 'up';
  writes = 0;
  async query<T>(_sql: string, params: unknown[] = []): Promise<T[]> {
    this.writes++;
    if (this.mode === 'down') throw new Error('connect ECONNREFUSED');
    const ids = params[0] as string[];
    ids.forEach((id, i) => {
      if (!this.rows.has(id))
        this.rows.set(
          id,
          params.map((col) => (col as unknown[])[i]),
        );
    });
    if (this.mode === 'lands-then-fails') {
      this.mode = 'up';
      throw new Error('Query read timeout');
    }
    return [];
  }
}

const settlement = (i: number): Settlement => ({
  principal: { keyName: 'k', team: 't', project: 'p', keyId: 'key_1' },
  requestId: `req-${i}`,
  provider: 'prov',
  model: 'm',
  usage: { prompt_tokens: 10, completion_tokens: 5 },
  estimated: false,
  costUsd: 0.002,
  listCostUsd: 0.003,
  cached: false,
  at: Date.UTC(2026, 11, 4, 12, 0, 0),
});

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond());
};

describe('ledger spool', () => {
  it('a row carries what the issue lists, in integer nano-USD', () => {
    const r = ledgerRow(settlement(1), 0.002, 'id-1');
    assert.deepEqual(r, {
      id: 'id-1',
      at: Date.UTC(2026, 11, 4, 12),
      request_id: 'req-1',
      key_id: 'key_1',
      key_name: 'k',
      team: 't',
      project: 'p',
      model: 'm',
      provider: 'prov',
      prompt_tokens: 10,
      completion_tokens: 5,
      cost_nano: 2_000_000,
      list_cost_nano: 3_000_000,
      cached: false,
      estimated: false,
    });
  });

  it('keeps rows while the database is down and writes each exactly once when it is back', async () => {
    const db = new FakeDb();
    const ledger = new PgLedger(db, { flushMs: 1, retryMs: 5, batchRows: 7, registry: new Registry() });
    db.mode = 'down';
    for (let i = 0; i < 30; i++) ledger.record(settlement(i), 0.002);
    await until(() => db.writes > 2);
    assert.equal(ledger.spooled, 30);
    assert.equal(db.rows.size, 0);
    db.mode = 'lands-then-fails'; // the next batch reaches the table but the client sees a timeout
    await until(() => ledger.spooled === 0);
    assert.equal(db.rows.size, 30, 'every row, none twice');
    assert.deepEqual([...db.rows.values()].map((r) => r[2]).sort(), Array.from({ length: 30 }, (_, i) => `req-${i}`).sort());
    ledger.close();
  });

  it('reports full() at capacity (admission then refuses with 503) and recovers once written', async () => {
    const db = new FakeDb();
    db.mode = 'down';
    const registry = new Registry();
    const ledger = new PgLedger(db, { maxRows: 5, flushMs: 1, retryMs: 5, registry });
    for (let i = 0; i < 5; i++) ledger.record(settlement(i), 0.002);
    assert.equal(ledger.full(), true);
    assert.match(await registry.metrics(), /aigw_ledger_spool_rows 5/);
    db.mode = 'up';
    assert.equal(await ledger.flush(), true);
    assert.equal(ledger.full(), false);
    assert.match(await registry.metrics(), /aigw_ledger_spool_rows 0/);
    ledger.close();
  });

  it('admission refuses with 503 ledger_unavailable while the spool is full, and a model outside the key allowlist with 403', async () => {
    const config = parseConfig({
      auth: { mode: 'none' },
      providers: [
        {
          name: 'p',
          base_url: 'http://127.0.0.1:9',
          api_key: 'x',
          models: [
            { name: 'm', input_per_million: 1, output_per_million: 2 },
            { name: 'other', input_per_million: 1, output_per_million: 2 },
          ],
        },
      ],
    });
    let full = true;
    const tenancy = createTenancy(config, { redis: null, metrics: createMetrics(), sink: { record: () => undefined, full: () => full } });
    const principal = { keyName: 'k', team: 't', project: 'p', keyId: 'key_1', models: ['m'] };
    await assert.rejects(
      async () => tenancy.admit(principal, 'm'),
      (e: { status: number; code: string }) => e.status === 503 && e.code === 'ledger_unavailable',
    );
    full = false;
    await tenancy.admit(principal, 'm');
    await assert.rejects(
      async () => tenancy.admit(principal, 'other'),
      (e: { status: number; code: string }) => e.status === 403 && e.code === 'model_not_allowed',
    );
    tenancy.close();
  });
});
