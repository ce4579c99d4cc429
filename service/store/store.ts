/**
 * Opens the store for one gateway process: the database (PostgreSQL or the embedded PGlite),
 * the migrations, the runtime key registry, the ledger and the budget rebuild watch.
 */
import type Redis from 'ioredis';
import type { Registry } from 'prom-client';
import type { GatewayConfig } from '../config/schema';
import { Db, openDb } from './db';
import { migrate } from './migrations';
import { PgLedger } from './ledger';
import { watchBudgets } from './rebuild';
import { KeyRegistry } from './registry';

export interface Store {
  db: Db;
  registry: KeyRegistry;
  ledger: PgLedger;
  settings: NonNullable<GatewayConfig['store']>;
  /** Writes the spooled rows (a few tries), stops the timers and closes the database. */
  close(): Promise<void>;
}

interface StoreLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** The PostgreSQL URL (DATABASE_URL wins over store.postgres_url), or undefined. */
export function databaseUrl(config: GatewayConfig, env: Record<string, string | undefined>): string | undefined {
  return env.DATABASE_URL || config.store?.postgres_url || undefined;
}

/** The store, or null when it is off (no URL and no embedded: true). */
export async function openStore(config: GatewayConfig, deps: { env: Record<string, string | undefined>; redis: Redis | null; registry: Registry; logger: StoreLogger }): Promise<Store | null> {
  const url = databaseUrl(config, deps.env);
  const settings = config.store ?? { embedded: false, spool_max_rows: 100_000, rotate_grace_seconds: 3600 };
  if (!url && !settings.embedded) return null;
  let lastLog = 0;
  const onError = (operation: string, err: unknown) => {
    if (Date.now() - lastLog < 10_000) return;
    lastLog = Date.now();
    deps.logger.warn({ operation, reason: (err as Error)?.message }, 'store call failed; retrying');
  };
  const db = await openDb(url, { dataDir: settings.embedded_dir, onError: (err) => onError('store_pool', err) });
  try {
    const applied = await migrate(db);
    if (applied.length) deps.logger.info({ applied }, 'store migrations applied');
    const registry = new KeyRegistry(db, { onError });
    await registry.start();
    const ledger = new PgLedger(db, { maxRows: settings.spool_max_rows, registry: deps.registry, onError: (err) => onError('ledger_write', err) });
    const stopWatch = deps.redis
      ? watchBudgets(db, deps.redis, {
          onError: (err) => onError('budget_rebuild', err),
          onRebuilt: (scopes) => deps.logger.warn({ scopes }, 'budget counters rebuilt from the ledger (Redis had lost them)'),
        })
      : () => undefined;
    deps.logger.info({ store: db.kind }, 'store ready');
    const close = async () => {
      stopWatch();
      await registry.stop();
      if (!(await ledger.flush(3))) deps.logger.warn({ rows: ledger.spooled }, 'ledger rows not written at shutdown');
      ledger.close();
      await db.close();
    };
    return { db, registry, ledger, settings, close };
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
}
