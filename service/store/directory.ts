/**
 * Keys and teams created through the admin API, and the audit log of every change: the SQL.
 * Each change runs in one transaction with its audit row, bumps store_state.version and sends
 * NOTIFY aigw_store, so every replica reloads (see registry.ts). Only key hashes are stored.
 */
import { randomBytes } from 'node:crypto';
import { generateKey, hashKey } from '../tenancy/keys';
import type { Db, Queryable } from './db';

export const STORE_CHANNEL = 'aigw_store';

export interface Budget {
  daily_usd?: number;
  monthly_usd?: number;
  alert_threshold: number;
}
export interface RateLimit {
  requests_per_minute?: number;
  burst: number;
  tokens_per_minute?: number;
}

export interface KeyRow {
  id: string;
  hash: string;
  name: string;
  team: string;
  project: string;
  models: string[] | null;
  rate_limit: RateLimit | null;
  budget: Budget | null;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
  rotated_from: string | null;
  created_by: string;
}

export interface TeamRow {
  name: string;
  budget: Budget | null;
  rate_limit: RateLimit | null;
  created_at: Date;
  updated_at: Date;
}

export interface NewKey {
  name: string;
  team: string;
  project: string;
  models?: string[];
  rate_limit?: RateLimit;
  budget?: Budget;
  expires_at?: Date;
}

export interface AuditRow {
  id: string;
  at: Date;
  actor: string;
  action: string;
  target: string;
  details: Record<string, unknown> | null;
}

const KEY_COLUMNS = 'id, hash, name, team, project, models, rate_limit, budget, created_at, expires_at, revoked_at, last_used_at, rotated_from, created_by';
const json = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v));

export const newKeyId = (): string => `key_${randomBytes(9).toString('base64url')}`;

/** The audit row and the change signal of one admin change, inside its transaction. */
async function changed(q: Queryable, actor: string, action: string, target: string, details?: Record<string, unknown>): Promise<void> {
  await q.query('INSERT INTO audit_log (actor, action, target, details) VALUES ($1, $2, $3, $4)', [actor, action, target, json(details)]);
  await q.query('UPDATE store_state SET version = version + 1 WHERE id = 1');
  await q.query(`SELECT pg_notify('${STORE_CHANNEL}', $1)`, [action]);
}

async function insertKey(q: Queryable, k: NewKey, actor: string, rotatedFrom: string | null): Promise<{ row: KeyRow; key: string }> {
  const key = generateKey();
  const rows = await q.query<KeyRow>(
    `INSERT INTO api_keys (id, hash, name, team, project, models, rate_limit, budget, expires_at, rotated_from, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ${KEY_COLUMNS}`,
    [newKeyId(), hashKey(key), k.name, k.team, k.project, json(k.models), json(k.rate_limit), json(k.budget), k.expires_at ?? null, rotatedFrom, actor],
  );
  return { row: rows[0], key };
}

/** undefined when an active key (not revoked, not expired) already has the name (limits are counted per name). */
export async function createKey(db: Db, k: NewKey, actor: string): Promise<{ row: KeyRow; key: string } | undefined> {
  return db.tx(async (q) => {
    const taken = await q.query('SELECT 1 FROM api_keys WHERE name = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) LIMIT 1', [k.name]);
    if (taken.length > 0) return undefined;
    const out = await insertKey(q, k, actor, null);
    await changed(q, actor, 'key.create', out.row.id, { name: k.name, team: k.team, project: k.project });
    return out;
  });
}

export async function listKeys(db: Queryable, team?: string): Promise<KeyRow[]> {
  return team === undefined
    ? db.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys ORDER BY created_at, id`)
    : db.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE team = $1 ORDER BY created_at, id`, [team]);
}

export async function getKey(db: Queryable, id: string): Promise<KeyRow | undefined> {
  return (await db.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE id = $1`, [id]))[0];
}

/** Revokes a key (a no-op on one already revoked); undefined when there is no such key. */
export async function revokeKey(db: Db, id: string, actor: string): Promise<KeyRow | undefined> {
  return db.tx(async (q) => {
    const rows = await q.query<KeyRow>(`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING ${KEY_COLUMNS}`, [id]);
    if (rows[0]) await changed(q, actor, 'key.revoke', id);
    return rows[0];
  });
}

/**
 * A new key with the old one's name, team, project, models, limits and budget; the old key
 * stays valid for graceSeconds (its expiry brought forward, never pushed back). undefined when
 * there is no active key with that id.
 */
export async function rotateKey(db: Db, id: string, graceSeconds: number, actor: string): Promise<{ row: KeyRow; key: string; old: KeyRow } | undefined> {
  return db.tx(async (q) => {
    const old = (
      await q.query<KeyRow>(
        `UPDATE api_keys SET expires_at = LEAST(COALESCE(expires_at, 'infinity'::timestamptz), now() + make_interval(secs => $2))
         WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) RETURNING ${KEY_COLUMNS}`,
        [id, graceSeconds],
      )
    )[0];
    if (!old) return undefined;
    const created = await insertKey(
      q,
      { name: old.name, team: old.team, project: old.project, models: old.models ?? undefined, rate_limit: old.rate_limit ?? undefined, budget: old.budget ?? undefined },
      actor,
      old.id,
    );
    await changed(q, actor, 'key.rotate', id, { new_id: created.row.id, grace_seconds: graceSeconds });
    return { ...created, old };
  });
}

export async function listTeams(db: Queryable): Promise<TeamRow[]> {
  return db.query<TeamRow>('SELECT name, budget, rate_limit, created_at, updated_at FROM teams ORDER BY name');
}

/** undefined when the team already exists. */
export async function createTeam(db: Db, t: { name: string; budget?: Budget; rate_limit?: RateLimit }, actor: string): Promise<TeamRow | undefined> {
  return db.tx(async (q) => {
    const rows = await q.query<TeamRow>('INSERT INTO teams (name, budget, rate_limit) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING name, budget, rate_limit, created_at, updated_at', [
      t.name,
      json(t.budget),
      json(t.rate_limit),
    ]);
    if (rows[0]) await changed(q, actor, 'team.create', t.name, { budget: t.budget, rate_limit: t.rate_limit });
    return rows[0];
  });
}

/** Replaces the fields given (null clears one); undefined when there is no such team. */
export async function patchTeam(db: Db, name: string, patch: { budget?: Budget | null; rate_limit?: RateLimit | null }, actor: string): Promise<TeamRow | undefined> {
  return db.tx(async (q) => {
    const rows = await q.query<TeamRow>(
      `UPDATE teams SET budget = CASE WHEN $2 THEN $3::jsonb ELSE budget END, rate_limit = CASE WHEN $4 THEN $5::jsonb ELSE rate_limit END, updated_at = now()
       WHERE name = $1 RETURNING name, budget, rate_limit, created_at, updated_at`,
      [name, patch.budget !== undefined, json(patch.budget), patch.rate_limit !== undefined, json(patch.rate_limit)],
    );
    if (rows[0]) await changed(q, actor, 'team.update', name, patch as Record<string, unknown>);
    return rows[0];
  });
}

/** Records an admin action that changes nothing in the store (e.g. a refused one is not recorded; a spend export is). */
export async function audit(db: Queryable, actor: string, action: string, target: string, details?: Record<string, unknown>): Promise<void> {
  await db.query('INSERT INTO audit_log (actor, action, target, details) VALUES ($1, $2, $3, $4)', [actor, action, target, json(details)]);
}

export async function listAudit(db: Queryable, opts: { from?: Date; to?: Date; limit: number }): Promise<AuditRow[]> {
  return db.query<AuditRow>(
    `SELECT id::text, at, actor, action, target, details FROM audit_log
     WHERE ($1::timestamptz IS NULL OR at >= $1) AND ($2::timestamptz IS NULL OR at < $2) ORDER BY id DESC LIMIT $3`,
    [opts.from ?? null, opts.to ?? null, opts.limit],
  );
}

/** The change counter: replicas compare it to decide whether to reload. */
export async function storeVersion(db: Queryable): Promise<number> {
  return Number((await db.query<{ version: string }>('SELECT version FROM store_state WHERE id = 1'))[0]?.version ?? 0);
}

/** Keys that may still authenticate (not revoked, not yet expired), for the in-memory key set. */
export async function activeKeys(db: Queryable): Promise<KeyRow[]> {
  return db.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`);
}

/** Stamps last_used_at for keys seen since the last call (batched, at most once a few seconds). */
export async function touchKeys(db: Queryable, used: Map<string, number>): Promise<void> {
  if (used.size === 0) return;
  const ids = [...used.keys()];
  const ats = ids.map((id) => new Date(used.get(id)!).toISOString());
  await db.query(
    `UPDATE api_keys k SET last_used_at = GREATEST(COALESCE(k.last_used_at, u.at), u.at)
     FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at) WHERE k.id = u.id`,
    [ids, ats],
  );
}
