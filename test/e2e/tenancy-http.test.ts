/**
 * Keys, limits, budget errors and the response cache as a client sees them over HTTP,
 * with a real redis-server.
 */
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import OpenAI from 'openai';
import { hashKey } from '../../service/tenancy/keys';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { metricValue, provider, startTestGateway, TestGateway, untilReady } from '../helpers/gateway';
import { RedisServer, startRedis } from '../helpers/redis-server';

const KEY = 'sk-gw-http-client';
const ADMIN = 'sk-gw-http-admin';

describe('tenancy over HTTP: keys, cache, spend report', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let up: FakeUpstream;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    redis = await startRedis();
    up = await startFakeUpstream('p');
    gw = await startTestGateway({
      auth: { keys: [{ hash: hashKey(KEY), name: 'app', team: 'web', project: 'site' }], admin_key_hashes: [hashKey(ADMIN)] },
      teams: [{ name: 'web', budget: { daily_usd: 100 } }],
      providers: [provider('p', up.url, [{ name: 'm', input_per_million: 1, output_per_million: 2 }])],
      models: { m: { list_price: { input_per_million: 10, output_per_million: 20 } } },
      rate_limit: { requests_per_minute: 1000, tokens_per_minute: 1_000_000 },
      cache: { enabled: true, ttl_seconds: 60 },
      // Not a test of Redis timeouts: the default 100 ms bound, on a machine busy with other work, fails
      // ioredis's ready check (INFO) and drops the connection, and the cache and spend fall back for a while.
      redis: { url: redis.url, command_timeout_ms: 2000 },
    });
    // The cache test's first answer is stored only if Redis is connected by then: start once it is.
    await untilReady(gw);
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: KEY, maxRetries: 0 });
  });
  afterEach(function () {
    // A failure here is about Redis or the upstream more often than not: show what the gateway logged.
    if (this.currentTest?.state === 'failed') console.log(gw.logs.slice(-50).join('\n'));
  });
  after(async () => {
    await gw.shutdown();
    await up.close();
    await redis.close();
  });

  const authCases: Array<[string, Record<string, string>, string]> = [
    ['no Authorization header', {}, 'missing_api_key'],
    ['not a Bearer token', { authorization: 'Basic dXNlcjpwYXNz' }, 'invalid_authorization_header'],
    ['an unknown key', { authorization: 'Bearer sk-gw-not-a-configured-key' }, 'invalid_api_key'],
  ];
  for (const [name, headers, code] of authCases) {
    it(`401 for ${name}, without echoing the key, before the body is read`, async () => {
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: '{"model":"m","messages":[{"role":"user","content":"x"}]}',
      });
      assert.equal(res.status, 401);
      const text = await res.text();
      assert.equal(JSON.parse(text).error.code, code);
      assert.equal(JSON.parse(text).error.type, 'authentication_error');
      assert.ok(!text.includes('sk-gw-not-a-configured-key'));
    });
  }

  it('the SDK with a valid key gets rate-limit headers', async () => {
    const { response } = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), '1000');
    assert.ok(Number(response.headers.get('x-ratelimit-remaining-requests')) < 1000);
    assert.ok(response.headers.get('x-ratelimit-limit-tokens'));
  });

  it('cache: temperature 0 misses, then hits without calling the upstream; no-cache bypasses', async () => {
    const body = { model: 'm', messages: [{ role: 'user' as const, content: 'cache me' }], temperature: 0 };
    const first = await client.chat.completions.create(body).withResponse();
    assert.equal(first.response.headers.get('x-gateway-cache'), 'miss');
    const calls = up.received.length;
    // The store is written after the response: wait until Redis holds the entry (bounded), not a fixed time.
    const probe = new Redis(redis.url, { lazyConnect: true });
    await probe.connect();
    for (const until = Date.now() + 5000; (await probe.keys('aigw:cache:*')).length === 0 && Date.now() < until;) await new Promise((r) => setTimeout(r, 10));
    await probe.quit();
    const second = await client.chat.completions.create(body).withResponse();
    assert.equal(second.response.headers.get('x-gateway-cache'), 'hit');
    assert.equal(second.response.headers.get('x-gateway-provider'), 'cache', 'the README: a cache hit is served by provider "cache"');
    assert.equal(second.response.headers.get('x-gateway-attempts'), '0', 'a hit makes no upstream attempt');
    assert.deepEqual(second.data.choices, first.data.choices);
    assert.equal(up.received.length, calls, 'a hit does not reach the upstream');
    const bypass = await client.chat.completions.create(body, { headers: { 'cache-control': 'no-cache' } }).withResponse();
    assert.equal(bypass.response.headers.get('x-gateway-cache'), null);
    assert.equal(up.received.length, calls + 1);
    const notDeterministic = await client.chat.completions.create({ ...body, temperature: 0.9 }).withResponse();
    assert.equal(notDeterministic.response.headers.get('x-gateway-cache'), null);
    assert.equal(await metricValue(gw.metricsUrl, 'aigw_cache_requests_total', { result: 'hit' }), 1);
    assert.ok((await metricValue(gw.metricsUrl, 'aigw_cache_requests_total', { result: 'bypass' })) >= 2);
  });

  it('cache: Redis down means bypass, not errors', async () => {
    await redis.stop({ keepData: true });
    try {
      const r = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'while down' }], temperature: 0 });
      assert.equal(r.choices[0].message.content, 'Hello from p');
    } finally {
      await redis.restart();
    }
  });

  it('the spend report needs the admin key, and shows cost, list cost and savings', async () => {
    assert.equal((await fetch(`${gw.url}/v1/gateway/spend`, { headers: { authorization: `Bearer ${KEY}` } })).status, 403);
    let report: { totals: { requests: number; cost_usd: number; list_cost_usd: number; savings_usd: number; cached_requests: number } } | undefined;
    for (let i = 0; i < 40; i++) {
      const res = await fetch(`${gw.url}/v1/gateway/spend?team=web`, { headers: { authorization: `Bearer ${ADMIN}` } });
      if (res.status === 200) {
        report = (await res.json()) as typeof report;
        if (report!.totals.requests >= 5) break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(report, 'spend report answered');
    const t = report!.totals;
    assert.ok(t.requests >= 5, `requests ${t.requests}`);
    assert.equal(t.cached_requests, 1);
    assert.ok(t.list_cost_usd > t.cost_usd);
    assert.ok(Math.abs(t.savings_usd - (t.list_cost_usd - t.cost_usd)) < 1e-9);
  });
});
