/**
 * A private PostgreSQL server for tests, as redis-server.ts starts Redis: initdb in a temp
 * folder, pg_ctl start on a free 127.0.0.1 port (socket in the same folder), trust auth.
 * As root (CI), initdb refuses to run: the folder is given to the `postgres` user and the
 * binaries run through `runuser -u postgres --`.
 *
 *   const pg = await startPostgres();
 *   pg.url              // postgres://postgres@127.0.0.1:PORT/postgres
 *   await pg.stop();      // pg_ctl stop -m fast (data kept)
 *   await pg.start();     // the same data, the same port
 *   await pg.close();     // stop and remove the folder (call in after())
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports';

export interface PostgresServer {
  readonly port: number;
  readonly url: string;
  start(): Promise<void>;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  close(): Promise<void>;
}

const BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

function asPostgres(cmd: string, args: string[]): { status: number | null; out: string } {
  const root = process.getuid?.() === 0;
  const r = root ? spawnSync('runuser', ['-u', 'postgres', '--', join(BIN, cmd), ...args], { encoding: 'utf8' }) : spawnSync(join(BIN, cmd), args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function postgresUid(): { uid: number; gid: number } {
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error('running as root needs a "postgres" user to run initdb (Debian package postgresql creates it)');
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

export async function startPostgres(): Promise<PostgresServer> {
  if (!existsSync(join(BIN, 'initdb'))) throw new Error(`PostgreSQL binaries not found in ${BIN}; install them (apt-get install postgresql) or set PG_BIN`);
  const dir = mkdtempSync(join(tmpdir(), 'aigw-pg-'));
  if (process.getuid?.() === 0) {
    const { uid, gid } = postgresUid();
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const init = asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  if (init.status !== 0) throw new Error(`initdb failed:\n${init.out}`);
  const port = await freePort();
  const start = async () => {
    const r = asPostgres('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '30', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60`, 'start']);
    if (r.status !== 0) throw new Error(`pg_ctl start failed:\n${r.out}`);
  };
  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    asPostgres('pg_ctl', ['-D', data, '-w', '-m', mode, 'stop']);
  };
  await start();
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    close: async () => {
      await stop('immediate');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
