/**
 * `redis.sentinels` / `redis.sentinel_name`: the gateway's client asks a real Redis Sentinel for the
 * master and writes there (the managed-HA path of the stack's `redis.sentinels`).
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { parseConfig } from '../../service/config/schema';
import { createRedisClient } from '../../service/redis/client';
import { freePort } from '../helpers/ports';
import { RedisServer, startRedis } from '../helpers/redis-server';

const MASTER = 'gw-master';
const PASSWORD = 'sentinel-test-password';

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Redis through Sentinel', function () {
  this.timeout(30_000);
  let master: RedisServer;
  let sentinel: ChildProcess;
  let sentinelPort: number;
  let dir: string;

  before(async () => {
    master = await startRedis({ password: PASSWORD });
    dir = mkdtempSync(join(tmpdir(), 'aigw-sentinel-'));
    sentinelPort = await freePort();
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(conf, [`port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor ${MASTER} 127.0.0.1 ${master.port} 1`, `sentinel auth-pass ${MASTER} ${PASSWORD}`, ''].join('\n'));
    sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    const probe = new Redis({ host: '127.0.0.1', port: sentinelPort, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
    probe.on('error', () => undefined); // refused until the sentinel listens
    try {
      await until('sentinel', async () => ((await probe.call('SENTINEL', 'get-master-addr-by-name', MASTER)) as string[] | null)?.[1] === String(master.port));
    } finally {
      probe.disconnect();
    }
  });
  after(async () => {
    sentinel?.kill('SIGTERM');
    await master?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('connects to the master the sentinel names, with the password from the URL (the stack passes rediss://...), and writes under the key prefix there', async () => {
    const config = parseConfig({
      providers: [{ name: 'p', base_url: 'https://example.com/v1', models: [{ name: 'm', unpriced: true }] }],
      auth: { mode: 'none' },
      // The URL's host is a name that does not resolve: only Sentinel can have found the master.
      redis: { url: `redis://:${PASSWORD}@master.invalid:1`, sentinels: [{ host: '127.0.0.1', port: sentinelPort }], sentinel_name: MASTER, key_prefix: 'aigw:prod:', command_timeout_ms: 1000 },
    });
    const client = createRedisClient(config)!;
    const direct = new Redis(master.url);
    try {
      await until('client ready', async () => client.status === 'ready');
      await client.set('probe', 'through-sentinel');
      assert.equal(await direct.get('aigw:prod:probe'), 'through-sentinel');
    } finally {
      client.disconnect();
      direct.disconnect();
    }
  });

  it('refuses sentinels without sentinel_name, and a block with neither url, host nor sentinels', () => {
    const base = { providers: [{ name: 'p', base_url: 'https://example.com/v1', models: [{ name: 'm', unpriced: true }] }], auth: { mode: 'none' as const } };
    assert.throws(() => parseConfig({ ...base, redis: { sentinels: [{ host: 'h', port: 26379 }] } }), /redis\.sentinel_name: sentinels and sentinel_name go together/);
    assert.throws(() => parseConfig({ ...base, redis: { port: 6379 } }), /redis: set url, host or sentinels/);
  });
});
