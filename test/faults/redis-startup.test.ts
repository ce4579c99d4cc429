/**
 * A replica that starts before its Redis is reachable: /ready answers 503 until the first
 * connection (so a rolling update does not send it traffic it could only admit from
 * per-replica memory), and at most REDIS_STARTUP_WAIT_MS, after which it serves on its
 * fallbacks like a replica that lost Redis.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { redisStartupWait } from '../../service/redis/client';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { provider, startTestGateway, TestGateway } from '../helpers/gateway';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { uniquePrefix, waitFor } from '../tenancy/fixtures';

describe('a replica starting before Redis is reachable', function () {
  this.timeout(30_000);

  describe('redisStartupWait (clock injected)', () => {
    const client = (status: string) => Object.assign(new EventEmitter(), { status }) as unknown as Parameters<typeof redisStartupWait>[0] & EventEmitter;

    it('waits until the first ready event, and not again after a later disconnect', () => {
      const c = client('connecting');
      const waiting = redisStartupWait(c, 10_000, () => 0);
      assert.equal(waiting(), true);
      c.emit('ready');
      assert.equal(waiting(), false);
      (c as unknown as { status: string }).status = 'reconnecting';
      assert.equal(waiting(), false, 'a replica that was connected once serves on its fallbacks');
    });

    it('waits at most the given time', () => {
      let now = 1_000;
      const waiting = redisStartupWait(client('connecting'), 10_000, () => now);
      now = 10_999;
      assert.equal(waiting(), true);
      now = 11_000;
      assert.equal(waiting(), false);
    });

    it('a client already connected does not wait', () => {
      assert.equal(redisStartupWait(client('ready'), 10_000, () => 0)(), false);
    });
  });

  describe('over HTTP', () => {
    let redis: RedisServer;
    let up: FakeUpstream;
    let gw: TestGateway | undefined;
    before(async () => {
      redis = await startRedis();
      up = await startFakeUpstream('p');
    });
    after(async () => {
      await gw?.shutdown();
      await up?.close();
      await redis?.close();
    });

    it('/ready is 503 "starting" until Redis answers, then 200 with redis up', async () => {
      await redis.stop();
      gw = await startTestGateway({
        auth: { mode: 'none' },
        rate_limit: { requests_per_minute: 1000 },
        providers: [provider('p', up.url, ['m'])],
        redis: { url: redis.url, key_prefix: uniquePrefix(), command_timeout_ms: 200 },
      });
      const ready = async () => {
        const res = await fetch(`${gw!.url}/ready`);
        return { status: res.status, body: (await res.json()) as { status: string; redis?: string } };
      };
      const before = await ready();
      assert.equal(before.status, 503);
      assert.equal(before.body.status, 'starting');
      assert.match(before.body.redis ?? '', /^down \(waiting for the first connection\)/);
      await redis.restart();
      await waitFor(async () => (await ready()).status === 200, '/ready 200 once Redis answers');
      assert.deepEqual((await ready()).body, { status: 'ready', providers: 1, redis: 'up' });
    });
  });
});
