/**
 * The store's schema as an ordered list of migrations, applied at startup.
 *
 * No migrator package is installed (node-pg-migrate, umzug... would be new dependencies), and
 * the list is small, so this is the well-known pattern they implement: one transaction takes a
 * transaction-scoped advisory lock (pg_advisory_xact_lock, released at COMMIT/ROLLBACK, see
 * https://www.postgresql.org/docs/15/functions-admin.html#FUNCTIONS-ADVISORY-LOCKS), reads
 * schema_migrations, applies the missing steps in order and records them. PostgreSQL DDL is
 * transactional, so a replica that dies half-way leaves nothing applied; replicas starting at
 * once queue on the lock and the later ones find everything applied. Append new steps; never
 * edit an applied one.
 */
import type { Db } from './db';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'keys, teams, ledger, audit',
    sql: `
CREATE TABLE teams (
  name text PRIMARY KEY,
  budget jsonb,
  rate_limit jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE api_keys (
  id text PRIMARY KEY,
  hash text NOT NULL UNIQUE,
  name text NOT NULL,
  team text NOT NULL,
  project text NOT NULL DEFAULT 'default',
  models jsonb,
  rate_limit jsonb,
  budget jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz,
  rotated_from text,
  created_by text NOT NULL
);
CREATE INDEX api_keys_team ON api_keys (team);
CREATE TABLE store_state (id int PRIMARY KEY CHECK (id = 1), version bigint NOT NULL);
INSERT INTO store_state VALUES (1, 0);
CREATE TABLE spend_ledger (
  id text PRIMARY KEY,
  at timestamptz NOT NULL,
  request_id text,
  key_id text,
  key_name text NOT NULL,
  team text NOT NULL,
  project text NOT NULL,
  model text NOT NULL,
  provider text NOT NULL,
  prompt_tokens bigint NOT NULL,
  completion_tokens bigint NOT NULL,
  cost_nano bigint NOT NULL,
  list_cost_nano bigint NOT NULL,
  cached boolean NOT NULL,
  estimated boolean NOT NULL
);
CREATE INDEX spend_ledger_at ON spend_ledger (at);
CREATE INDEX spend_ledger_team_at ON spend_ledger (team, at);
CREATE INDEX spend_ledger_key_at ON spend_ledger (key_id, at);
CREATE TABLE audit_log (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  actor text NOT NULL,
  action text NOT NULL,
  target text NOT NULL,
  details jsonb
);
CREATE INDEX audit_log_at ON audit_log (at);
`,
  },
];

/** Any constant: the lock id every replica of every version of the gateway agrees on. */
const MIGRATION_LOCK = 0x61696777; // "aigw"

/** Applies the missing migrations; returns the versions this call applied (empty when up to date). */
export async function migrate(db: Db, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  return db.tx(async (q) => {
    await q.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await q.query('CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
    const done = new Set((await q.query<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => Number(r.version)));
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      for (const stmt of splitStatements(m.sql)) await q.query(stmt);
      await q.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    return applied;
  });
}

/** Statements of a migration (one per query call: the extended protocol takes one at a time). No ';' inside literals here. */
export function splitStatements(sql: string): string[] {
  return sql
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
