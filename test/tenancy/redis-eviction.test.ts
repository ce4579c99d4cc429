/**
 * The cache filled past its memory cap, through the real gateway over HTTP (openai SDK), with the two
 * real redis-servers the stack runs: the state server (limits, budgets, spend) and the cache server,
 * each configured with the eviction policy infra/redis.ts renders (`redisArgs`). The cache server
 * evicts cache entries; the state server evicts nothing, and every budget, limit and spend key is
 * still there with the spend of every request.
 *
 * Why the design needs two servers is checked here too: Redis' eviction policy is per server and
 * every state key carries a TTL, so no single-server policy (allkeys-* or volatile-*) could tell a
 * cache entry from a budget.
 */
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import OpenAI from 'openai';
import { redisArgs } from '../../infra/redis';
import { cacheKey } from '../../service/cache/cache';
import { METRICS } from '../../service/cost/spend';
import { hashKey } from '../../service/tenancy/keys';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { provider, startTestGateway, TestGateway } from '../helpers/gateway';
import { RedisServer, startRedis } from '../helpers/redis-server';

const KEY = 'sk-gw-eviction-client';
const CACHE_CAP = 4 * 1024 * 1024;
const ENTRY_CHARS = 100_000;
const REQUESTS = 100;
const PREFIX = 'aigw:';

/** The value of one flag in a redis-server argument list. */
const flag = (args: string[], name: string) => args[args.indexOf(name) + 1];

async function info(r: Redis, field: string): Promise<number> {
  const text = await r.info();
  const m = new RegExp(`^${field}:(\\d+)`, 'm').exec(text);
  if (!m) throw new Error(`no ${field} in INFO`);
  return Number(m[1]);
}

async function keysOf(r: Redis): Promise<string[]> {
  return (await r.keys('*')).sort();
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Redis eviction: a full cache evicts cache entries, never a budget, limit or spend key', function () {
  this.timeout(60_000);
  let stateServer: RedisServer;
  let cacheServer: RedisServer;
  let state: Redis;
  let cache: Redis;
  let up: FakeUpstream;
  let gw: TestGateway;

  before(async () => {
    [stateServer, cacheServer] = await Promise.all([startRedis(), startRedis()]);
    state = new Redis(stateServer.url);
    cache = new Redis(cacheServer.url);
    // The policies exactly as the stack renders them; the cache cap scaled down so a test fills it.
    await state.config('SET', 'maxmemory-policy', flag(redisArgs('state', '1Gi', true), '--maxmemory-policy'));
    await state.config('SET', 'maxmemory', String(64 * 1024 * 1024));
    await cache.config('SET', 'maxmemory-policy', flag(redisArgs('cache', '256Mi', false), '--maxmemory-policy'));
    await cache.config('SET', 'maxmemory', String(CACHE_CAP));
    up = await startFakeUpstream('p', () => ({ kind: 'ok', content: 'x'.repeat(ENTRY_CHARS) }));
    gw = await startTestGateway({
      auth: { keys: [{ hash: hashKey(KEY), name: 'filler', team: 'search', rate_limit: { requests_per_minute: 100_000, tokens_per_minute: 100_000_000 } }] },
      teams: [{ name: 'search', budget: { daily_usd: 1000, monthly_usd: 10_000 }, rate_limit: { requests_per_minute: 100_000 } }],
      providers: [provider('p', up.url, ['gpt-fill'])],
      rate_limit: { requests_per_minute: 100_000 },
      redis: { url: stateServer.url, key_prefix: PREFIX, command_timeout_ms: 1000 },
      cache: { enabled: true, ttl_seconds: 3600, redis: { url: cacheServer.url, key_prefix: PREFIX, command_timeout_ms: 1000 } },
    });
  });
  after(async () => {
    await gw?.shutdown();
    await up?.close();
    state?.disconnect();
    cache?.disconnect();
    await Promise.all([stateServer?.close(), cacheServer?.close()]);
  });

  it('renders noeviction for the state server and allkeys-lru for the cache server', () => {
    assert.equal(flag(redisArgs('state', '1Gi', true), '--maxmemory-policy'), 'noeviction');
    assert.equal(flag(redisArgs('cache', '256Mi', false), '--maxmemory-policy'), 'allkeys-lru');
  });

  it('fills the cache past its cap: cache entries are evicted, state keys all stay, every request is accounted', async () => {
    const client = new OpenAI({ apiKey: KEY, baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const bodies = Array.from({ length: REQUESTS }, (_, i) => ({ model: 'gpt-fill', temperature: 0, messages: [{ role: 'user' as const, content: `prompt ${i}` }] }));
    for (const body of bodies) {
      const res = await client.chat.completions.create(body);
      assert.equal(res.choices[0].message.content?.length, ENTRY_CHARS);
    }
    assert.equal(up.received.length, REQUESTS, 'every prompt was distinct, so none was a cache hit');

    // Every request's spend reaches the state server (the ledger writes within SPEND_COALESCE_MS).
    const budgetKeys = async () => (await keysOf(state)).filter((k) => k.startsWith(`${PREFIX}budget:{t:search}:`));
    const recorded = async () => {
      let n = 0;
      for (const k of (await keysOf(state)).filter((x) => x.startsWith(`${PREFIX}spend:{t:`) && !x.includes(':seq:'))) {
        for (const [f, v] of Object.entries(await state.hgetall(k))) if (f.startsWith('search|') && f.endsWith(`|${METRICS.requests}`)) n += Number(v);
      }
      return n;
    };
    await waitFor('spend of every request in Redis', async () => (await budgetKeys()).length === 1 && (await recorded()) === REQUESTS);
    const stateKeys = await keysOf(state);
    const kinds = (p: string) => stateKeys.filter((k) => k.startsWith(`${PREFIX}${p}`));
    assert.ok(kinds('rl:').length >= 2, `rate-limit keys: ${stateKeys.join(', ')}`);
    assert.equal(kinds('spend:{t:').filter((k) => !k.includes(':seq:')).length, 1, `spend keys: ${stateKeys.join(', ')}`);
    assert.ok(
      stateKeys.every((k) => !k.startsWith(`${PREFIX}cache:`)),
      'no cache entry on the state server',
    );
    for (const k of stateKeys) assert.ok((await state.ttl(k)) > 0, `${k} has a TTL, so a volatile-* policy could evict it: hence two servers`);
    assert.equal(await info(state, 'evicted_keys'), 0, 'the state server evicted nothing');

    // Every one of the requests is in the spend row, and the budget holds their cost.
    const spendRow = kinds('spend:{t:').find((k) => !k.includes(':seq:'))!;
    const spend = await state.hgetall(spendRow);
    const requests = Object.entries(spend).filter(([f]) => f.startsWith('search|') && f.endsWith(`|${METRICS.requests}`));
    assert.equal(
      requests.reduce((n, [, v]) => n + Number(v), 0),
      REQUESTS,
      `requests in ${spendRow}: ${JSON.stringify(spend)}`,
    );
    const budget = await state.hgetall((await budgetKeys())[0]);
    assert.ok(Number(budget.m) > 0, `budget month total: ${JSON.stringify(budget)}`);

    // The cache server stayed under its cap by evicting cache entries. Which ones is Redis's approximated
    // LRU (a sample of keys, a clock of about a second), not ours to assert: entries written within the
    // same second are evicted in no fixed order, so "the oldest entry is gone" fails now and then.
    assert.ok((await info(cache, 'evicted_keys')) > 0, 'the cache server evicted entries');
    assert.ok((await info(cache, 'used_memory')) <= CACHE_CAP * 1.1, 'the cache server stays at its cap');
    const cacheKeys = await keysOf(cache);
    assert.ok(cacheKeys.length > 0 && cacheKeys.length < REQUESTS, `${cacheKeys.length} cache entries kept of ${REQUESTS}`);
    assert.ok(
      cacheKeys.every((k) => k.startsWith(`${PREFIX}cache:`)),
      `only cache entries on the cache server: ${cacheKeys.slice(0, 5).join(', ')}`,
    );
    const figures = {
      requests: REQUESTS,
      entry_bytes: ENTRY_CHARS,
      cache_cap_bytes: CACHE_CAP,
      cache_entries_kept: cacheKeys.length,
      cache_evicted: await info(cache, 'evicted_keys'),
      cache_used_memory: await info(cache, 'used_memory'),
      state_keys: stateKeys.length,
      state_evicted: await info(state, 'evicted_keys'),
    };
    console.log(`      eviction: ${JSON.stringify(figures)}`);
    const entry = (i: number) => `${PREFIX}${cacheKey('search', 'gpt-fill', bodies[i])}`;
    assert.equal(await cache.exists(entry(REQUESTS - 1)), 1, 'the newest entry is kept');

    // The kept entry still serves: a repeat is answered from the cache, without the upstream.
    const again = await client.chat.completions.create(bodies[REQUESTS - 1]).withResponse();
    assert.equal(again.response.headers.get('x-gateway-cache'), 'hit');
    assert.equal(up.received.length, REQUESTS);
  });
});
