/**
 * A private Redis Cluster for tests: 3 masters (and, with `replicas: 1`, one replica each, 6
 * processes) on free 127.0.0.1 ports, each `redis-server --cluster-enabled yes` in its own temp
 * folder, joined by `redis-cli --cluster create ... --cluster-yes` (as the Redis Cluster tutorial
 * does it: https://redis.io/docs/latest/operate/oss_and_stack/management/scaling/).
 *
 *   const cluster = await startRedisCluster({ replicas: 1 });
 *   cluster.url                 // redis://127.0.0.1:<first master>
 *   await cluster.killMasterOf('{t:red}'); // SIGSTOP then SIGKILL the master of that hash tag's slot, wait for its replica to take over
 *   await cluster.close();
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { freePort } from './ports';

const HOST = '127.0.0.1';

export interface RedisCluster {
  readonly url: string;
  readonly ports: number[];
  /** SIGKILLs the master serving `key`'s slot and resolves once a replica serves it (cluster_state ok again). Returns the killed port. */
  killMasterOf(key: string): Promise<number>;
  close(): Promise<void>;
}

function assertBinaries(): void {
  for (const bin of ['redis-server', 'redis-cli']) {
    if (spawnSync(bin, ['--version'], { stdio: 'ignore' }).error)
      throw new Error(`${bin} not found on PATH; install it: apt-get install redis-server (Redis Cluster tests need redis-server and redis-cli)`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const alive = (p: ChildProcess) => p.exitCode === null && p.signalCode === null;

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`redis cluster: timed out waiting for ${what}${last ? ` (${(last as Error).message})` : ''}`);
    await sleep(100);
  }
}

/** One-off connection to a node (no cluster routing), closed after `fn`. */
async function onNode<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 500 });
  r.on('error', () => undefined); // a node that is down: connect() rejects, which the caller handles
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

const clusterOk = (port: number) => onNode(port, async (r) => /cluster_state:ok/.test(String(await r.cluster('INFO'))));

export async function startRedisCluster(opts: { replicas?: 0 | 1 } = {}): Promise<RedisCluster> {
  assertBinaries();
  const replicas = opts.replicas ?? 0;
  const n = 3 * (1 + replicas);
  const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'));
  const ports: number[] = [];
  for (let i = 0; i < n; i++) ports.push(await freePort());
  const procs = new Map<number, ChildProcess>();
  for (const port of ports) {
    // Failover within about a second of a master going silent, whatever the replica's data age
    // (cluster-replica-validity-factor 0: its link to a master that was first hung counts as
    // stale otherwise, and it would refuse to take over); no persistence.
    const args = [
      '--port',
      String(port),
      '--bind',
      HOST,
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      `nodes-${port}.conf`,
      '--cluster-node-timeout',
      '1000',
      '--cluster-replica-validity-factor',
      '0',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--logfile',
      `redis-${port}.log`,
    ];
    procs.set(port, spawn('redis-server', args, { stdio: 'ignore' }));
  }
  const close = async () => {
    for (const p of procs.values()) if (alive(p)) p.kill('SIGKILL');
    await Promise.all([...procs.values()].map((p) => (alive(p) ? new Promise((r) => p.once('exit', r)) : null)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) await until(`node ${port} to answer PING`, () => onNode(port, async (r) => (await r.ping()) === 'PONG'), 5000);
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `${HOST}:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { encoding: 'utf8', timeout: 20_000 });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}\n${create.stderr}`);
    for (const port of ports) await until(`cluster_state:ok on ${port}`, () => clusterOk(port), 15_000);
    if (replicas) {
      // Replicating, not only known to the cluster bus: a replica whose first sync has not finished
      // would take over with an empty data set.
      const linkUp = (port: number) =>
        onNode(port, async (r) => {
          const info = await r.info('replication');
          return /role:master/.test(info) || /master_link_status:up/.test(info);
        });
      for (const port of ports) await until(`replication link up on ${port}`, () => linkUp(port), 15_000);
    }
  } catch (err) {
    await close();
    throw err;
  }

  return {
    url: `redis://${HOST}:${ports[0]}`,
    ports,
    async killMasterOf(key: string): Promise<number> {
      const running = ports.filter((p) => alive(procs.get(p)!));
      const slot = await onNode(running[0], (r) => r.cluster('KEYSLOT', key));
      const master = await onNode(running[0], async (r) => {
        const slots = await r.cluster('SLOTS');
        return slots.find(([from, to]) => slot >= from && slot <= to)![2][1];
      });
      const p = procs.get(master)!;
      // Hung first, then gone: while it is stopped the kernel still delivers what it already sent
      // its replica (a write it acknowledged is replicated), which a SIGKILL with unread input
      // would reset. Redis replication is asynchronous: a master killed outright can lose its last
      // acknowledged writes (https://redis.io/docs/latest/operate/oss_and_stack/management/scaling/).
      p.kill('SIGSTOP');
      await sleep(300);
      p.kill('SIGKILL');
      await new Promise((r) => p.once('exit', r));
      const others = ports.filter((x) => x !== master && alive(procs.get(x)!));
      await until(
        `a replica to take over slot ${slot}`,
        () =>
          onNode(others[0], async (r) => {
            const slots = await r.cluster('SLOTS');
            const owner = slots.find(([from, to]) => slot >= from && slot <= to)?.[2][1];
            return owner !== undefined && owner !== master && (await clusterOk(owner));
          }),
        20_000,
      );
      return master;
    },
    close,
  };
}
