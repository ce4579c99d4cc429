/**
 * The leased request window (service/tenancy/lease.ts): slots leased from one Redis counter in
 * batches and handed out from memory, against a real redis-server with one connection per
 * simulated replica.
 */
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { FAIR_DIVISOR, LEASE_LUA, LeasedWindow, MAX_PREFETCH, MemoryWindow, prefetchSize, Take, TakeResult, VIEW_MAX_AGE_MS } from '../../service/tenancy/lease';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { ready, uniquePrefix, waitFor } from './fixtures';

describe('leased request windows', function () {
  this.timeout(20_000);

  describe('prefetchSize (pure)', () => {
    it('nothing before any take; at most twice the takes seen (slow start)', () => {
      assert.equal(prefetchSize(0, 10), 0);
      assert.equal(prefetchSize(1, 0), 2);
      assert.equal(prefetchSize(4, 1), 8);
    });
    it('about 100 ms of the recent rate, at most MAX_PREFETCH', () => {
      assert.equal(prefetchSize(100, 50), 200); // 2 per ms -> 200 in 100 ms (also 2 x 100)
      assert.equal(prefetchSize(100, 1000), 10); // 0.1 per ms -> 10
      assert.equal(prefetchSize(1, 60_000), 1);
      assert.equal(prefetchSize(1_000_000, 1), MAX_PREFETCH);
    });
  });

  describe('MemoryWindow (injected clock)', () => {
    it('amounts: admitted while units were left before the take; settle replaces a reservation; a new window starts empty', () => {
      let t = 0;
      const w = new MemoryWindow(100, 60_000, () => t);
      assert.deepEqual(w.take('a', 60), { ok: true, remaining: 40, resetMs: 60_000 });
      assert.equal(w.take('a', 60).ok, true, '40 were left before it');
      assert.equal(w.take('a', 1).ok, false, 'spent (120 of 100)');
      w.settle('a', 10, 60, 60_000); // each used 10 of its 60
      w.settle('a', 10, 60, 60_000);
      assert.equal(w.take('a', 0).remaining, 80);
      w.settle('a', 5, 0, -Infinity); // usage with no reservation in this window: counted whole
      assert.equal(w.take('a', 0).remaining, 75);
      t = 60_000;
      assert.deepEqual(w.take('a', 1), { ok: true, remaining: 99, resetMs: 60_000 });
      w.settle('a', 70, 60, 60_000); // a reservation of the window before: the whole usage
      assert.equal(w.take('a', 0).remaining, 29);
      assert.equal(w.take('b', 1).remaining, 99, 'ids apart');
    });
  });

  describe('against Redis', () => {
    let server: RedisServer;
    const clients: Redis[] = [];
    before(async () => {
      server = await startRedis();
    });
    after(async () => {
      await server?.close();
    });
    afterEach(() => {
      for (const c of clients.splice(0)) c.disconnect();
    });

    async function client(): Promise<Redis> {
      const c = new Redis({ host: server.host, port: server.port, enableAutoPipelining: true, lazyConnect: false, maxRetriesPerRequest: 0 });
      clients.push(c);
      await ready(c);
      return c;
    }

    async function windows(n: number, limit: number, opts: { windowMs?: number; expectedReplicas?: number } = {}): Promise<LeasedWindow[]> {
      const prefix = `${uniquePrefix()}rl:key:req`;
      const out: LeasedWindow[] = [];
      for (let i = 0; i < n; i++) {
        const redis = await client();
        out.push(new LeasedWindow({ redis, prefix, limit, windowMs: opts.windowMs ?? 60_000, expectedReplicas: opts.expectedReplicas ?? n, ready: () => redis.status === 'ready' }));
      }
      return out;
    }

    /** Lease scripts run by the server since the last call (EVALSHA and EVAL calls). */
    async function leaseCalls(): Promise<() => Promise<number>> {
      const admin = await client();
      const read = async () => {
        const info = await admin.info('commandstats');
        let n = 0;
        for (const m of info.matchAll(/cmdstat_(evalsha|eval):calls=(\d+)/g)) n += Number(m[2]);
        return n;
      };
      const start = await read();
      return async () => (await read()) - start;
    }

    const takeAll = (ws: LeasedWindow[], perWindow: number, id = 'alice') => Promise.all(ws.flatMap((w) => Array.from({ length: perWindow }, () => Promise.resolve(w.take(id)))));

    it('300 concurrent requests on three replicas against a limit of 100: exactly 100 admitted, each with its own remaining count', async () => {
      const results = (await takeAll(await windows(3, 100), 100)) as Take[];
      const ok = results.filter((r) => r.ok);
      assert.equal(ok.length, 100);
      assert.deepEqual(
        ok.map((r) => r.remaining).sort((a, b) => a - b),
        Array.from({ length: 100 }, (_, i) => i),
      );
      for (const r of results.filter((x) => !x.ok)) assert.equal(r.remaining, 0);
    });

    /** The order in which a lease is sent to Redis and an I/O callback queued right after the take (as undici queues the provider call's write). */
    async function leaseAfterTake(w: LeasedWindow): Promise<string[]> {
      const order: string[] = [];
      const spied = w as unknown as { ask: (...a: unknown[]) => Promise<void> };
      const ask = spied.ask;
      spied.ask = function (this: unknown, ...a: unknown[]) {
        order.push('lease');
        return ask.apply(this, a);
      };
      try {
        assert.ok(((await w.take('alice')) as Take).ok);
        setImmediate(() => order.push('provider call'));
        await waitFor(async () => order.length === 2, 'the lease and the provider call', 2000);
      } finally {
        delete (spied as { ask?: unknown }).ask;
      }
      return order;
    }

    it('a prefetch far from the limit reaches Redis after the provider call of the request that set it off (first byte)', async () => {
      const [w] = await windows(1, 1000);
      assert.ok(((await w.take('alice')) as Take).ok, 'first lease: a demand and a prefetch of 2 (slow start)');
      // This take leaves the pool at half its prefetch, so it asks for more.
      assert.deepEqual(await leaseAfterTake(w), ['provider call', 'lease']);
    });

    it('a prefetch with less than half of the window left goes at once (other replicas may wait for it)', async () => {
      const [w] = await windows(1, 1000);
      const prefix = (w as unknown as { opts: { prefix: string } }).opts.prefix;
      await clients[0].set(`${prefix}:alice`, 600, 'PX', 60_000); // other replicas used 600 of the 1,000
      assert.ok(((await w.take('alice')) as Take).ok, 'first lease: a demand and a prefetch of 2');
      assert.deepEqual(await leaseAfterTake(w), ['lease', 'provider call']);
    });

    it('one replica, sequential requests: remaining counts down by one, then refusal; far fewer lease calls than requests', async () => {
      const calls = await leaseCalls();
      const [w] = await windows(1, 1000);
      const remaining: number[] = [];
      for (let i = 0; i < 1000; i++) {
        const r = (await w.take('alice')) as Take;
        assert.ok(r.ok, `request ${i} admitted`);
        remaining.push(r.remaining);
      }
      assert.deepEqual(
        remaining,
        Array.from({ length: 1000 }, (_, i) => 999 - i),
      );
      const refused = (await w.take('alice')) as Take;
      assert.equal(refused.ok, false);
      assert.ok(refused.resetMs > 0 && refused.resetMs <= 60_000);
      const n = await calls();
      assert.ok(n < 100, `${n} lease calls for 1,000 requests`);
      // Refused from memory once the window is known to be spent: no more calls.
      for (let i = 0; i < 50; i++) assert.equal(((await w.take('alice')) as Take).ok, false);
      assert.equal(await calls(), n);
    });

    it('requests moving to another replica: never over the limit, and at most one and a half prefetches per other replica left unused', async () => {
      const limit = 2000;
      const ws = await windows(3, limit);
      // Replicas 1 and 2 warm up (and prefetch), then all traffic goes to replica 0.
      for (let i = 0; i < 200; i++) {
        await ws[1].take('alice');
        await ws[2].take('alice');
      }
      let admitted = 400;
      for (;;) {
        const r = (await ws[0].take('alice')) as Take;
        if (!r.ok) break;
        admitted++;
      }
      // Each holds at most its last prefetch (<= left / (8 x 3)) plus what was left of the one
      // before when it asked (at most half of that).
      const bound = 2 * Math.floor((1.5 * limit) / (FAIR_DIVISOR * 3));
      assert.ok(admitted <= limit, `admitted ${admitted}`);
      assert.ok(admitted >= limit - bound, `admitted ${admitted}, at most ${bound} held unused elsewhere`);
      // The replicas holding slots still spend them.
      let spentElsewhere = 0;
      for (const w of [ws[1], ws[2]]) while (((await w.take('alice')) as Take).ok) spentElsewhere++;
      assert.equal(admitted + spentElsewhere, limit, 'every slot is used by someone');
    });

    it('a slot given back on a replica that found the window spent (its request refused by another rule) is written back, and another replica gets it once its view is renewed', async () => {
      const ws = await windows(2, 10);
      const prefix = (ws[0] as unknown as { opts: { prefix: string } }).opts.prefix;
      const first = (await takeAll([ws[0]], 11)) as Take[];
      assert.equal(first.filter((r) => r.ok).length, 10, 'replica 0 takes the whole window; its 11th request finds it spent');
      assert.equal(((await ws[1].take('alice')) as Take).ok, false, 'replica 1 is refused: its view is now spent too');
      // One of replica 0's requests is refused by another of its rules: its slot comes back to replica 0.
      ws[0].settle('alice', 0, 1, Date.now() + first[0].resetMs);
      await waitFor(async () => (await clients[0].get(`${prefix}:alice`)) === '9', 'the slot written back to Redis', 2000);
      await new Promise((r) => setTimeout(r, VIEW_MAX_AGE_MS + 20));
      assert.equal(((await ws[1].take('alice')) as Take).ok, true, 'replica 1 renews its view and gets the slot');
      assert.equal(((await ws[1].take('alice')) as Take).ok, false);
      assert.equal(((await ws[0].take('alice')) as Take).ok, false, 'replica 0 kept nothing');
      assert.equal(await clients[0].get(`${prefix}:alice`), '10');
    });

    it('a new window starts when the old one ends; slots left from the old one are dropped', async () => {
      const [w] = await windows(1, 5, { windowMs: 300 });
      const first = await Promise.all(Array.from({ length: 7 }, () => Promise.resolve(w.take('bob'))));
      assert.equal(first.filter((r) => r?.ok).length, 5);
      await new Promise((r) => setTimeout(r, 350));
      const second = await Promise.all(Array.from({ length: 7 }, () => Promise.resolve(w.take('bob'))));
      assert.equal(second.filter((r) => r?.ok).length, 5);
    });

    it('ids have their own windows', async () => {
      const [w] = await windows(1, 2);
      assert.deepEqual(
        (await takeAll([w], 3, 'a')).map((r) => r?.ok),
        [true, true, false],
      );
      assert.deepEqual(
        (await takeAll([w], 3, 'b')).map((r) => r?.ok),
        [true, true, false],
      );
    });

    it('Redis not ready: null (the caller falls back); slots already leased are still used', async () => {
      const redis = await client();
      let up = true;
      const w = new LeasedWindow({ redis, prefix: `${uniquePrefix()}w`, limit: 100, windowMs: 60_000, expectedReplicas: 1, ready: () => up });
      for (let i = 0; i < 20; i++) await w.take('alice'); // leases grow past the demand
      // The background lease lands (its reply can take longer than any fixed pause on a loaded machine).
      const slot = () => (w as unknown as { slots: Map<string, { leasing: boolean; pool: number }> }).slots.get('alice')!;
      await waitFor(async () => !slot().leasing && slot().pool > 0, 'the background lease landed', 2000);
      up = false;
      const results: TakeResult[] = [];
      for (let i = 0; i < 100; i++) results.push(await w.take('alice'));
      const okFromPool = results.findIndex((r) => r === null);
      assert.ok(okFromPool > 0, 'leased slots served first');
      assert.ok(results.slice(0, okFromPool).every((r) => r?.ok));
      assert.ok(results.slice(okFromPool).every((r) => r === null));
    });

    it('a lease that fails answers null to the requests waiting for it', async () => {
      const redis = await client();
      const w = new LeasedWindow({ redis, prefix: `${uniquePrefix()}w`, limit: 100, windowMs: 60_000, expectedReplicas: 1, ready: () => true });
      server.pause();
      try {
        redis.options.commandTimeout = 100;
        const r = await w.take('alice');
        assert.equal(r, null);
      } finally {
        server.resume();
      }
      await waitFor(async () => (await w.take('alice'))?.ok === true, 'admitted after Redis resumed');
    });

    it('a reply later than the command timeout: the lease is asked again and its grant is neither lost nor doubled', async () => {
      const redis = await client();
      const prefix = `${uniquePrefix()}w`;
      const w = new LeasedWindow({ redis, prefix, limit: 100, windowMs: 60_000, expectedReplicas: 1, ready: () => redis.status === 'ready' });
      redis.options.commandTimeout = 500;
      // Redis stalls with the lease on the wire; it answers 700 ms later, after the first ask
      // timed out (500 ms) and while the second is still waiting (until 1,000 ms).
      server.pause();
      const pending = Promise.resolve(w.take('alice'));
      await new Promise((r) => setTimeout(r, 700));
      server.resume();
      const r = await pending;
      assert.equal(r?.ok, true, 'admitted from the lease, not left to the in-memory fallback');
      // Demand 1 + a prefetch of 1 (prefetchSize(1, long ago)), counted once: Redis ran the
      // script twice, and the second run answered the first one's grant.
      assert.equal(await redis.get(`${prefix}:alice`), '2', 'the window counts the lease once');
      assert.equal((await w.take('alice'))?.ok, true, 'the prefetched slot serves the next request');
    });

    it('the lease script: the same replica and seq asked again gets the grant already made, never a second one', async () => {
      const redis = await client();
      redis.defineCommand('leaseOnce', { numberOfKeys: 2, lua: LEASE_LUA });
      const prefix = `${uniquePrefix()}w`;
      const lease = (replica: string, seq: number, demand: number) =>
        (redis as unknown as { leaseOnce: (...a: unknown[]) => Promise<number[]> }).leaseOnce(`${prefix}:a`, `${prefix}-leases:a`, demand, 0, 5, 60_000, 1, replica, seq);
      const grantAndUsed = async (...a: Parameters<typeof lease>) => (await lease(...a)).slice(0, 2);
      assert.deepEqual(await grantAndUsed('r1', 1, 3), [3, 3]);
      assert.deepEqual(await grantAndUsed('r1', 1, 3), [3, 3], 'asked again: the same grant, the window unchanged');
      assert.deepEqual(await grantAndUsed('r1', 2, 3), [2, 5], 'a new lease: what is left');
      assert.deepEqual(await grantAndUsed('r1', 2, 3), [2, 5]);
      assert.deepEqual(await grantAndUsed('r2', 1, 1), [0, 5], 'another replica with the same seq is another lease');
      assert.equal(await redis.get(`${prefix}:a`), '5');
      assert.ok((await redis.pttl(`${prefix}-leases:a`)) > 0, 'the lease record expires with the window');
    });
  });
});
