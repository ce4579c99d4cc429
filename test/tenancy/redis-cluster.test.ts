/**
 * The gateway on a real Redis Cluster: 3 masters with one replica each (6 redis-server
 * processes, `redis-cli --cluster create`), three gateways (HTTP, in this process) sharing it
 * with `redis.cluster: true`. Every key a request touches carries its team's hash tag, so the
 * lease and spend scripts each stay in one slot; teams land on different masters.
 */
import assert from 'node:assert/strict';
import Redis, { Cluster } from 'ioredis';
import OpenAI from 'openai';
import { clusterOptions } from '../../service/redis/client';
import { parseConfig } from '../../service/config/schema';
import { hashKey } from '../../service/tenancy/keys';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { metricValue, provider, spendTotals, startTestGateway, TestGateway } from '../helpers/gateway';
import { RedisCluster, startRedisCluster } from '../helpers/redis-cluster';
import { heldSlotsReleased, uniquePrefix, waitFor } from './fixtures';

const ADMIN = 'sk-gw-cluster-admin';
const KEYS = { red: 'sk-gw-cluster-red', blue: 'sk-gw-cluster-blue' };
/** The fake upstream answers 10 prompt + 5 completion tokens; at 1 and 2 USD per million: */
const COST = 10 * 1e-6 + 5 * 2e-6;

describe('Redis Cluster client options (pure)', () => {
  const redisOf = (redis: Record<string, unknown>) =>
    parseConfig({ providers: [{ name: 'p', base_url: 'http://127.0.0.1:1/v1', models: [{ name: 'm', input_per_million: 1, output_per_million: 1 }] }], auth: { mode: 'none' }, redis }).redis!;
  it('a rediss:// url: the seed node, its user and password for every node, TLS keeping host names', () => {
    const { nodes, options } = clusterOptions(redisOf({ url: 'rediss://app:s%40cret@clustercfg.example:6380', cluster: true, key_prefix: 'k:' }));
    assert.deepEqual(nodes, [{ host: 'clustercfg.example', port: 6380 }]);
    assert.equal(options.redisOptions?.username, 'app');
    assert.equal(options.redisOptions?.password, 's@cret');
    assert.ok(options.redisOptions?.tls, 'TLS from the rediss:// scheme');
    assert.equal(options.keyPrefix, 'k:');
    assert.equal(options.enableOfflineQueue, false);
    assert.equal(options.enableAutoPipelining, true);
    let resolved = '';
    options.dnsLookup!('node-1.example', (_err, address) => (resolved = address));
    assert.equal(resolved, 'node-1.example', 'host names are not resolved to IPs under TLS');
    assert.equal((options.redisOptions as Record<string, unknown>).host, undefined, 'no fixed host for every node');
  });
  it('host/port and a password block, without TLS', () => {
    const { nodes, options } = clusterOptions(redisOf({ host: '10.0.0.5', port: 7000, password: 'pw', cluster: true }));
    assert.deepEqual(nodes, [{ host: '10.0.0.5', port: 7000 }]);
    assert.equal(options.redisOptions?.password, 'pw');
    assert.equal(options.redisOptions?.tls, undefined);
    assert.equal(options.dnsLookup, undefined);
  });
});

describe('Redis Cluster: three gateways on 3 masters (with replicas)', function () {
  this.timeout(60_000);
  let cluster: RedisCluster;
  let up: FakeUpstream;
  let gws: TestGateway[] = [];
  let prefix: string;

  before(async () => {
    cluster = await startRedisCluster({ replicas: 1 });
    up = await startFakeUpstream('p');
  });
  after(async () => {
    await up?.close();
    await cluster?.close();
  });
  afterEach(async () => {
    await Promise.all(gws.map((g) => g.shutdown()));
    gws = [];
  });

  async function start(extra: Record<string, unknown> = {}): Promise<OpenAI[]> {
    prefix = uniquePrefix();
    // Three replicas, whatever else the test's rate_limit sets (spread after it, `extra` would replace the whole block).
    const { rate_limit: rateLimit, ...rest } = extra;
    for (let i = 0; i < 3; i++) {
      gws.push(
        await startTestGateway({
          auth: {
            keys: [
              { hash: hashKey(KEYS.red), name: 'red-app', team: 'red', project: 'web' },
              { hash: hashKey(KEYS.blue), name: 'blue-app', team: 'blue', project: 'web' },
            ],
            admin_key_hashes: [hashKey(ADMIN)],
          },
          teams: [{ name: 'red', budget: { daily_usd: 1000 } }, { name: 'blue' }],
          providers: [provider('p', up.url, [{ name: 'm', input_per_million: 1, output_per_million: 2 }])],
          ...rest,
          rate_limit: { expected_replicas: 3, ...(rateLimit as object) },
          redis: { url: cluster.url, cluster: true, key_prefix: prefix, command_timeout_ms: 500 },
        }),
      );
    }
    await waitFor(async () => (await Promise.all(gws.map((g) => metricValue(g.metricsUrl, 'aigw_redis_up')))).every((v) => v === 1), 'every gateway connected to the cluster', 10_000);
    return gws.map((g) => new OpenAI({ baseURL: `${g.url}/v1`, apiKey: 'unused', maxRetries: 0 }));
  }

  /** One chat request through gateway i with a team's key: its status. */
  async function call(i: number, team: keyof typeof KEYS): Promise<number> {
    const res = await fetch(`${gws[i].url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS[team]}` },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }),
    });
    const body = await res.text();
    if (process.env.DBG) console.log(i, team, res.status, res.headers.get('x-ratelimit-remaining-tokens'), body.slice(0, 200));
    return res.status;
  }

  const ownerPort = async (key: string): Promise<number> => {
    const r = new Redis(cluster.url, { maxRetriesPerRequest: 0 });
    try {
      const slot = await r.cluster('KEYSLOT', key);
      const slots = await r.cluster('SLOTS');
      return slots.find(([a, b]) => slot >= a && slot <= b)![2][1];
    } finally {
      r.disconnect();
    }
  };

  it("limit rules and spend are exact across three gateways; each team's keys share one slot, the teams are on different masters", async () => {
    await start({
      rate_limit: { requests_per_minute: 30 },
      limits: [{ resource: 'tokens', capacity: 150, scope: { team: 'blue', model: '*' } }],
    });
    assert.notEqual(await ownerPort('{t:red}'), await ownerPort('{t:blue}'), 'red and blue hash to different masters (so scripts of both run on two nodes)');
    // red: 30 requests a minute per key, across the three gateways.
    // A concurrent burst gets the limit but for what a replica whose requests ran out still holds
    // of its prefetch (lease.ts, Exactness: here at most one slot each, 1/(8 x 3) of 30 left,
    // rounded down, and never on the replica that was refused): 28 to 30, never more.
    const red = await Promise.all(Array.from({ length: 45 }, (_, i) => call(i % 3, 'red')));
    const burst = red.filter((s) => s === 200).length;
    assert.ok(burst >= 28 && burst <= 30, `red: ${red.join(',')}`);
    assert.ok(red.every((s) => s === 200 || s === 429));
    // The slots held are used by the holder's next request, or written back once it knows the
    // window is spent and taken by another replica once its view is renewed: the window gives
    // exactly 30 in all.
    await heldSlotsReleased();
    const after: number[] = [];
    for (let i = 0; i < 9; i++) after.push(await call(i % 3, 'red'));
    assert.equal(burst + after.filter((s) => s === 200).length, 30, `red after the burst: ${after.join(',')}`);
    assert.equal(after[after.length - 1], 429);
    // blue: 150 tokens a minute on team x model, 15 tokens a request (admitted while tokens were left before it).
    const blue: number[] = [];
    for (let i = 0; i < 15; i++) blue.push(await call(i % 3, 'blue'));
    const blueOk = blue.filter((s) => s === 200).length;
    if (process.env.DBG)
      console.log(
        await Promise.all(gws.map((g) => metricValue(g.metricsUrl, 'aigw_rate_limit_fallbacks_total'))),
        await Promise.all(gws.map((g) => metricValue(g.metricsUrl, 'aigw_redis_errors_total'))),
      );
    assert.ok(blueOk >= 10 && blueOk <= 10 + 3, `blue admitted ${blueOk}: 10 fit, and at most one more per gateway within the stated bound`);
    assert.equal(blue[blue.length - 1], 429, 'then refused');
    // Spend: every gateway flushes on shutdown; the report counts each served request once.
    await Promise.all(gws.map((g) => g.gateway.ctx.tenancy.flush()));
    const totals = await spendTotals(gws[0].url, ADMIN, 'red');
    assert.equal(totals.requests, 30);
    assert.ok(Math.abs(totals.cost_usd - 30 * COST) < 1e-9, `red cost ${totals.cost_usd}`);
    assert.equal((await spendTotals(gws[1].url, ADMIN, 'blue')).requests, blueOk);
    // The keys in the cluster: every key of red's requests carries red's tag.
    const c = new Cluster([{ host: '127.0.0.1', port: cluster.ports[0] }]);
    try {
      await new Promise((r) => c.once('ready', r));
      const keys = (await Promise.all(c.nodes('master').map((n) => n.keys(`${prefix}*`)))).flat();
      const red = keys.filter((k) => k.includes('red') && !k.startsWith(`${prefix}spend-teams:`));
      assert.ok(red.length >= 4, `red's keys: ${red.join(', ')}`);
      for (const k of red) assert.ok(k.includes('{t:red}'), `${k} carries red's hash tag`);
    } finally {
      c.disconnect();
    }
  });

  it('survives a master failover under traffic: no client request fails, and spend is exact afterwards', async () => {
    await start({ rate_limit: { requests_per_minute: 1_000_000, tokens_per_minute: 1_000_000_000 } });
    let running = true;
    const statuses: number[] = [];
    const loops = Array.from({ length: 6 }, async (_, j) => {
      while (running) statuses.push(await call(j % 3, j % 2 ? 'blue' : 'red'));
    });
    await new Promise((r) => setTimeout(r, 500));
    const killed = await cluster.killMasterOf('{t:red}');
    await new Promise((r) => setTimeout(r, 500)); // traffic after the promotion
    running = false;
    await Promise.all(loops);
    assert.ok(killed > 0);
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      'every request answered 200 through the failover',
    );
    // Spend written while red's master was gone was buffered and is written to the promoted replica.
    try {
      await waitFor(async () => (await Promise.all(gws.map((g) => metricValue(g.metricsUrl, 'aigw_spend_buffered_entries')))).every((v) => v === 0), 'buffered spend written', 15_000);
    } finally {
      if (process.env.DBG)
        for (const g of gws)
          console.log(
            g.logs
              .filter((l) => /redis|spend/i.test(l))
              .slice(-8)
              .join('\n'),
          );
    }
    await Promise.all(gws.map((g) => g.gateway.ctx.tenancy.flush()));
    const served = async (team: string) => (await Promise.all(gws.map((g) => metricValue(g.metricsUrl, 'aigw_requests_total', { status_class: '2xx', team })))).reduce((a, b) => a + b);
    const [redServed, blueServed] = [await served('red'), await served('blue')];
    assert.equal(redServed + blueServed, statuses.length);
    const red = await spendTotals(gws[0].url, ADMIN, 'red');
    const blue = await spendTotals(gws[0].url, ADMIN, 'blue');
    assert.deepEqual({ red: red.requests, blue: blue.requests }, { red: redServed, blue: blueServed }, 'the spend report counts every request served, once');
    assert.ok(Math.abs(red.cost_usd - red.requests * COST) < 1e-9);
  });
});
