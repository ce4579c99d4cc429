/** Every authentication failure, and the response cache against a real Redis (hit, miss, bypass, Redis down). */
import assert from 'node:assert/strict';
import type Redis from 'ioredis';
import { createResponseCache } from '../../service/cache/cache';
import { parseConfig } from '../../service/config/schema';
import { GatewayError } from '../../service/core/errors';
import { Metrics } from '../../service/metrics/metrics';
import { createTenancy } from '../../service/tenancy/tenancy';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { connect, KEYS, metricValue, newMetrics, ready, testConfig, uniquePrefix, waitFor } from './fixtures';

describe('authentication', () => {
  const metrics = newMetrics();
  const tenancy = createTenancy(testConfig(), { redis: null, metrics });
  after(() => tenancy.close());

  const failures: Array<[string, string | undefined, string, RegExp]> = [
    ['no header', undefined, 'missing_api_key', /^Missing API key/],
    ['empty header', '', 'missing_api_key', /^Missing API key/],
    ['wrong scheme', `Basic ${KEYS.alice}`, 'invalid_authorization_header', /^Malformed Authorization header/],
    ['key without scheme', KEYS.alice, 'invalid_authorization_header', /^Malformed Authorization header/],
    ['scheme without key', 'Bearer ', 'invalid_authorization_header', /^Malformed Authorization header/],
    ['unknown key', 'Bearer sk-gw-not-a-configured-key', 'invalid_api_key', /^Invalid API key/],
    ['a configured hash sent as the key', `Bearer ${testConfig().auth.keys[0].hash}`, 'invalid_api_key', /^Invalid API key/],
    ['admin key is not a client key', `Bearer ${KEYS.admin}`, 'invalid_api_key', /^Invalid API key/],
  ];
  for (const [name, header, code, message] of failures) {
    it(`${name} -> 401 ${code}`, () => {
      assert.throws(
        () => tenancy.authenticate(header),
        (e: unknown) => {
          assert.ok(e instanceof GatewayError);
          assert.equal(e.status, 401);
          assert.equal(e.type, 'authentication_error');
          assert.equal(e.code, code);
          assert.match(e.message, message);
          assert.equal(e.headers['www-authenticate'], 'Bearer');
          if (header) assert.ok(!JSON.stringify(e.toBody()).includes(header.replace(/^\S+\s+/, '') || '\u0000'), 'never echoes the key');
          return true;
        },
      );
    });
  }

  it('counts failures by reason, and valid keys resolve to their team and project', async () => {
    assert.deepEqual(tenancy.authenticate(`Bearer ${KEYS.bob}`), { keyName: 'bob', team: 'blue', project: 'batch' });
    assert.equal(await metricValue(metrics, 'authFailures', { reason: 'missing' }), 2);
    assert.equal(await metricValue(metrics, 'authFailures', { reason: 'malformed' }), 3);
    assert.equal(await metricValue(metrics, 'authFailures', { reason: 'unknown' }), 3);
    assert.equal(tenancy.isAdmin(`Bearer ${KEYS.admin}`), true);
    assert.equal(tenancy.isAdmin(`Bearer ${KEYS.alice}`), false);
  });

  it('auth mode none: an anonymous principal under the global limits', async () => {
    const config = parseConfig({
      auth: { mode: 'none' },
      rate_limit: { requests_per_minute: 2 },
      providers: [{ name: 'p', base_url: 'http://127.0.0.1:1/v1', models: [{ name: 'm', unpriced: true }] }],
    });
    const open = createTenancy(config, { redis: null, metrics: newMetrics() });
    const anon = open.authenticate(undefined);
    assert.deepEqual(anon, { keyName: 'anonymous', team: 'default', project: 'default' });
    await open.admit(anon, 'm');
    const second = await open.admit(anon, 'm');
    assert.equal(second.headers['x-ratelimit-remaining-requests'], '0');
    await assert.rejects(Promise.resolve(open.admit(anon, 'm')), (e: GatewayError) => e.status === 429);
    open.close();
  });
});

describe('response cache', function () {
  this.timeout(20_000);
  let server: RedisServer;
  let redis: Redis;
  let metrics: Metrics;
  const alice = { keyName: 'alice', team: 'red', project: 'web' };
  const bob = { keyName: 'bob', team: 'blue', project: 'batch' };
  const body = { model: 'gpt-x', temperature: 0, messages: [{ role: 'user', content: 'hello' }] };

  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    redis?.disconnect();
    await server.close();
  });

  const build = async (enabled = true) => {
    const config = testConfig({ cache: { enabled, ttl_seconds: 60 }, redis: { url: server.url, key_prefix: uniquePrefix(), command_timeout_ms: 2000 } }); // not a test of Redis timeouts
    metrics = newMetrics();
    redis?.disconnect();
    redis = connect(config, metrics);
    await ready(redis);
    return createResponseCache(config, { redis, metrics });
  };

  it('miss, store, hit; other teams and other requests miss', async () => {
    const cache = await build();
    const key = cache.keyFor(alice, 'gpt-x', body, {})!;
    assert.ok(key);
    assert.equal(await cache.get(key), null);
    await cache.set(key, '{"id":"cmpl-1"}');
    assert.equal(await cache.get(cache.keyFor(alice, 'gpt-x', { ...body, user: 'someone', stream: false }, {})!), '{"id":"cmpl-1"}');
    assert.equal(await cache.get(cache.keyFor(bob, 'gpt-x', body, {})!), null);
    assert.equal(await cache.get(cache.keyFor(alice, 'gpt-x', { ...body, messages: [{ role: 'user', content: 'bye' }] }, {})!), null);
    assert.equal(await metricValue(metrics, 'cacheRequests', { result: 'hit' }), 1);
    assert.equal(await metricValue(metrics, 'cacheRequests', { result: 'miss' }), 3);
    assert.ok((await redis.ttl(key)) > 0 && (await redis.ttl(key)) <= 60, 'stored with the configured TTL');
  });

  it('bypass: streaming, Cache-Control: no-cache, non-zero temperature without opt-in; opt-in caches', async () => {
    const cache = await build();
    assert.equal(cache.keyFor(alice, 'gpt-x', { ...body, stream: true }, {}), null);
    assert.equal(cache.keyFor(alice, 'gpt-x', body, { 'cache-control': 'no-cache' }), null);
    assert.equal(cache.keyFor(alice, 'gpt-x', { ...body, temperature: 0.5 }, {}), null);
    assert.equal(await metricValue(metrics, 'cacheRequests', { result: 'bypass' }), 3);
    const optIn = cache.keyFor(alice, 'gpt-x', { ...body, temperature: 0.5 }, { 'x-gateway-cache': 'true' });
    assert.ok(optIn);
  });

  it('disabled: never a key, nothing counted', async () => {
    const cache = await build(false);
    assert.equal(cache.keyFor(alice, 'gpt-x', body, {}), null);
    assert.equal(await metricValue(metrics, 'cacheRequests'), 0);
  });

  it('Redis down: get is a miss without error, set is a no-op; it works again after Redis returns', async () => {
    const cache = await build();
    const key = cache.keyFor(alice, 'gpt-x', body, {})!;
    await server.stop();
    await waitFor(() => redis.status !== 'ready', 'client to notice');
    assert.equal(await cache.get(key), null);
    await cache.set(key, '{"id":"x"}');
    assert.equal(await metricValue(metrics, 'cacheRequests', { result: 'error' }), 1);
    await server.restart();
    await ready(redis);
    await cache.set(key, '{"id":"y"}');
    assert.equal(await cache.get(key), '{"id":"y"}');
  });

  it('without Redis configured: an in-memory cache', async () => {
    const config = testConfig({ cache: { enabled: true } });
    const cache = createResponseCache(config, { redis: null, metrics: newMetrics() });
    const key = cache.keyFor(alice, 'gpt-x', body, {})!;
    await cache.set(key, 'cached');
    assert.equal(await cache.get(key), 'cached');
  });
});
