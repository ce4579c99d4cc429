/** Object owners: who may touch a provider object, with Redis up (real redis-server) and down. */
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { GatewayError } from '../../service/core/errors';
import { assertOwned, MemoryObjectRegistry, objectLifetimeSeconds, RedisObjectRegistry } from '../../service/tenancy/objects';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { waitFor } from './fixtures';

describe('object owners (tenancy/objects)', () => {
  it('memory: recorded for its lifetime, never re-assigned, forgotten on delete', async () => {
    let t = 0;
    const reg = new MemoryObjectRegistry(() => t);
    await reg.record('file-1', { team: 'red', provider: 'p' }, 10);
    await reg.record('file-1', { team: 'blue', provider: 'q' }, 10);
    assert.deepEqual(await reg.lookup('file-1'), { team: 'red', provider: 'p' });
    t = 10_001;
    assert.equal(await reg.lookup('file-1'), null);
    await reg.record('file-2', { team: 'red', provider: 'p' }, 10);
    await reg.forget('file-2');
    assert.equal(await reg.lookup('file-2'), null);
  });

  it('assertOwned: 404 object_not_found for another team or an unknown id', async () => {
    const reg = new MemoryObjectRegistry();
    await reg.record('file-1', { team: 'red', provider: 'p' }, 60);
    await assertOwned(reg, 'red', ['file-1']);
    for (const [team, ids] of [
      ['blue', ['file-1']],
      ['red', ['file-1', 'file-9']],
    ] as const) {
      await assert.rejects(assertOwned(reg, team, ids), (e: unknown) => e instanceof GatewayError && e.status === 404 && e.code === 'object_not_found');
    }
  });

  it('lifetime: the answer expires_at when it is in the future, else the default', () => {
    assert.equal(objectLifetimeSeconds({ expires_at: 1_000_100 }, 60, 1_000_000_000), 100);
    assert.equal(objectLifetimeSeconds({ expires_at: 10 }, 60, 1_000_000_000), 60);
    assert.equal(objectLifetimeSeconds({}, 60, 0), 60);
  });

  describe('on Redis', function () {
    this.timeout(20_000);
    let server: RedisServer;
    before(async () => {
      server = await startRedis();
    });
    after(async () => server.close());

    it('shared by replicas: one records, another sees the owner; the key expires with the object', async () => {
      const r1 = new Redis(server.url, { keyPrefix: 'o1:' });
      const r2 = new Redis(server.url, { keyPrefix: 'o1:' });
      await waitFor(() => r1.status === 'ready' && r2.status === 'ready', 'redis ready');
      await new RedisObjectRegistry(r1).record('batch_1', { team: 'red', provider: 'p' }, 120);
      assert.deepEqual(await new RedisObjectRegistry(r2).lookup('batch_1'), { team: 'red', provider: 'p' });
      const ttl = await r2.ttl('obj:batch_1');
      assert.ok(ttl > 100 && ttl <= 120, `ttl ${ttl}`);
      r1.disconnect();
      r2.disconnect();
    });

    it('Redis unreachable: ids this replica recorded still resolve, any other is 503 (never a guess)', async () => {
      const r = new Redis(server.url, { lazyConnect: true });
      const errors: string[] = [];
      const reg = new RedisObjectRegistry(r, Date.now, (op) => errors.push(op));
      await reg.record('file-local', { team: 'red', provider: 'p' }, 60);
      assert.deepEqual(await reg.lookup('file-local'), { team: 'red', provider: 'p' });
      await assert.rejects(reg.lookup('file-elsewhere'), (e: unknown) => e instanceof GatewayError && e.status === 503 && e.code === 'object_registry_unavailable');
      assert.deepEqual(errors, ['object_record']);
      r.disconnect();
    });
  });
});
