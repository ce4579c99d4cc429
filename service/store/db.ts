/**
 * One small query interface over PostgreSQL (`pg`, a pool) and the embedded PGlite (a real
 * Postgres compiled to WebAssembly, in this process): the same SQL and the same migrations run
 * on both. Only this file knows which one is underneath.
 */
import type { Client, Pool, PoolClient } from 'pg';

export interface Queryable {
  /** Runs one statement with $1.. parameters and returns its rows. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

export interface Db extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Runs fn in one transaction on one connection (committed when fn resolves, rolled back when it throws). */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /**
   * Calls onNotify for every NOTIFY on the channel. On PostgreSQL a dedicated connection holds
   * the LISTEN; when it breaks it is re-opened (onError reports it) and the caller's periodic
   * refresh covers the gap. Resolves with a function that stops listening.
   */
  listen(channel: string, onNotify: (payload: string) => void, onError?: (err: unknown) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

const IDENT = /^[a-z_][a-z0-9_]*$/;

async function inTx<T>(c: { query(sql: string): Promise<unknown> }, q: Queryable, fn: (q: Queryable) => Promise<T>): Promise<T> {
  await c.query('BEGIN');
  try {
    const out = await fn(q);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * PostgreSQL through a pg Pool. `statementTimeoutMs` bounds every statement (a hung server never
 * hangs a caller). pg is loaded here, when a store is configured, not by every gateway (10 MB of RSS).
 */
export async function postgresDb(url: string, opts: { max?: number; statementTimeoutMs?: number; onError?: (err: unknown) => void } = {}): Promise<Db> {
  const { Pool, Client } = await import('pg');
  const timeouts = { connectionTimeoutMillis: 2_000, query_timeout: opts.statementTimeoutMs ?? 5_000 };
  const pool = new Pool({ connectionString: url, max: opts.max ?? 5, idleTimeoutMillis: 30_000, ...timeouts });
  pool.on('error', (err) => opts.onError?.(err)); // an idle client's connection dropped: the pool replaces it
  const wrap = (c: Pool | PoolClient): Queryable => ({ query: async <T>(sql: string, params?: unknown[]) => (await c.query(sql, params as unknown[])).rows as T[] });
  return {
    kind: 'postgres',
    ...wrap(pool),
    async tx(fn) {
      const c = await pool.connect();
      try {
        return await inTx(c, wrap(c), fn);
      } finally {
        c.release();
      }
    },
    async listen(channel, onNotify, onError) {
      if (!IDENT.test(channel)) throw new Error(`bad channel name ${channel}`);
      let stopped = false;
      let client: Client | undefined;
      let retry: NodeJS.Timeout | undefined;
      const connect = async (): Promise<void> => {
        const c = new Client({ connectionString: url, ...timeouts });
        c.on('notification', (n) => onNotify(n.payload ?? ''));
        c.on('error', (err) => {
          onError?.(err);
          reopen();
        });
        await c.connect();
        await c.query(`LISTEN ${channel}`);
        client = c;
      };
      const reopen = () => {
        client?.end().catch(() => undefined);
        client = undefined;
        if (stopped || retry) return;
        retry = setTimeout(() => {
          retry = undefined;
          if (!stopped) connect().catch((err) => (onError?.(err), reopen()));
        }, 1_000);
        retry.unref();
      };
      await connect().catch((err) => (onError?.(err), reopen()));
      return async () => {
        stopped = true;
        if (retry) clearTimeout(retry);
        await client?.end().catch(() => undefined);
      };
    },
    close: () => pool.end(),
  };
}

/** The embedded default: PGlite in this process, in memory (dataDir unset) or in a directory. */
export async function pgliteDb(dataDir?: string): Promise<Db> {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = new PGlite(dataDir);
  await db.waitReady;
  const wrap = (c: { query: typeof db.query }): Queryable => ({ query: async <T>(sql: string, params?: unknown[]) => (await c.query<T>(sql, params)).rows });
  return {
    kind: 'pglite',
    ...wrap(db),
    tx: (fn) => db.transaction((t) => fn(wrap(t))),
    async listen(channel, onNotify) {
      const unlisten = await db.listen(channel, onNotify);
      return unlisten;
    },
    close: () => db.close(),
  };
}

/** PostgreSQL when a URL is given, else PGlite. */
export async function openDb(url: string | undefined, opts: { dataDir?: string; onError?: (err: unknown) => void } = {}): Promise<Db> {
  return url ? postgresDb(url, { onError: opts.onError }) : pgliteDb(opts.dataDir);
}
