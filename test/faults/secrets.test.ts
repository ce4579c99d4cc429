/**
 * Secrets never leak, and the admin endpoints need the admin key.
 *
 * One gateway (log level trace, every line captured) on a password-protected Redis runs a
 * suite of requests: successes, streams, every auth failure, admin calls, provider 401s and
 * 4xx/5xx whose bodies echo the provider key, a pass-through request, a Redis outage. Then
 * every response body and header, every log line and the whole /metrics text are searched
 * for each provider key, client key, admin key and the Redis password.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createKeyRing, hashKey } from '../../service/tenancy/keys';
import { Behavior, FakeUpstream, Received, startFakeUpstream } from '../helpers/fake-upstream';
import { metricValue, startTestGateway, TestGateway } from '../helpers/gateway';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { chatBody, waitFor } from './helpers';

const secret = (prefix: string) => `${prefix}${randomBytes(12).toString('hex')}`;
const KEYS = {
  providerA: secret('sk-prov-a-'),
  providerB: secret('sk-prov-b-'),
  client: secret('sk-gw-client-'),
  client2: secret('sk-gw-other-'),
  admin: secret('sk-gw-admin-'),
  redisPassword: secret('redis-pw-'),
};

/** What provider `a` does, chosen by the request's `x_case` field (an unknown field, passed through). */
function aBehavior(req: Received): Behavior {
  const echo = (status: number, extra = ''): Behavior => ({
    kind: 'status',
    status,
    body: { error: { message: `Incorrect API key provided: ${KEYS.providerA}${extra}`, type: 'invalid_request_error', code: 'invalid_api_key', param: null } },
  });
  switch (req.body.x_case) {
    case '401':
      return echo(401);
    case '403':
      return echo(403);
    case '400-echo':
      return echo(400, ` (Authorization: Bearer ${KEYS.providerA})`);
    case '500-echo':
      return echo(500);
    case '429-echo':
      return { ...(echo(429) as Extract<Behavior, { kind: 'status' }>), headers: { 'retry-after': '0' } };
    case 'invalid-json':
      return { kind: 'invalid-json' };
    case 'cut':
      return { kind: 'stream', cutAfter: 2, delayMs: 5 };
    default:
      if (req.path.endsWith('/moderations')) return echo(401);
      return req.body.stream ? { kind: 'stream' } : { kind: 'ok' };
  }
}

describe('secrets never leak', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let a: FakeUpstream;
  let b: FakeUpstream;
  let gw: TestGateway;
  const seen: string[] = [];

  before(async () => {
    redis = await startRedis({ password: KEYS.redisPassword });
    a = await startFakeUpstream('a', aBehavior);
    b = await startFakeUpstream('b');
    const prices = { input_per_million: 1, output_per_million: 2 };
    gw = await startTestGateway({
      server: { log_level: 'trace' },
      auth: {
        keys: [
          { hash: hashKey(KEYS.client), name: 'client', team: 'red', project: 'web' },
          { hash: hashKey(KEYS.client2), name: 'other', team: 'red', project: 'web' },
        ],
        admin_key_hashes: [hashKey(KEYS.admin)],
      },
      teams: [{ name: 'red' }],
      routing: { strategy: 'priority', max_retries: 0, retry_delay_ms: 1, circuit_breaker: { cooldown_ms: 1 } },
      providers: [
        {
          name: 'a',
          base_url: a.url,
          api_key: KEYS.providerA,
          priority: 1,
          timeout_ms: 2000,
          models: [
            { name: 'm', ...prices },
            { name: 'solo', ...prices },
          ],
        },
        { name: 'b', base_url: b.url, api_key: KEYS.providerB, priority: 2, timeout_ms: 2000, models: [{ name: 'm', ...prices }] },
      ],
      redis: { url: redis.url, key_prefix: 'secrets:', command_timeout_ms: 200 },
      cache: { enabled: true },
      passthrough: [{ path: '/v1/moderations', methods: ['POST'], provider: 'a' }],
    });
    await waitFor(async () => (await metricValue(gw.metricsUrl, 'aigw_redis_up')) === 1, 'redis up (with password)');
  });
  after(async () => {
    await gw?.shutdown();
    await a?.close();
    await b?.close();
    await redis?.close();
  });

  /** Sends a request and records everything the client could see. */
  async function call(method: string, path: string, opts: { key?: string | null; auth?: string; body?: unknown; headers?: Record<string, string> } = {}) {
    await new Promise((r) => setTimeout(r, 10)); // a provider failure opens its circuit for cooldown_ms (1 ms): let it pass
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.auth !== undefined) headers.authorization = opts.auth;
    else if (opts.key !== null) headers.authorization = `Bearer ${opts.key ?? KEYS.client}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${gw.url}${path}`, { method, headers, body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) });
    const text = await res.text();
    seen.push(`${res.status} ${JSON.stringify([...res.headers])}\n${text}`);
    return { status: res.status, text };
  }
  const post2 = async (base: string) => {
    const res = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chatBody('m')) });
    const text = await res.text();
    seen.push(`${res.status} ${JSON.stringify([...res.headers])}\n${text}`);
    return { status: res.status, text };
  };
  const chat = (extra: Record<string, unknown> = {}, opts: Parameters<typeof call>[2] = {}) => call('POST', '/v1/chat/completions', { body: chatBody('m', extra), ...opts });

  it('runs successes, every error, failovers, provider key echoes and a Redis outage, and no secret appears anywhere', async () => {
    const expect = async (p: Promise<{ status: number; text: string }>, status: number, what: string) => {
      const r = await p;
      assert.equal(r.status, status, `${what}: ${r.text.slice(0, 200)}`);
    };
    await expect(chat(), 200, 'success');
    await expect(chat({ temperature: 0 }), 200, 'cache miss');
    await expect(chat({ temperature: 0 }), 200, 'cache hit');
    await expect(chat({ stream: true }), 200, 'stream');
    await expect(call('POST', '/v1/embeddings', { body: { model: 'm', input: 'x' } }), 400, 'wrong endpoint for model');
    // Auth failures, with the wrong key in several shapes.
    await expect(chat({}, { key: null }), 401, 'missing key');
    await expect(chat({}, { key: `${KEYS.client}x` }), 401, 'unknown key (a near miss)');
    await expect(chat({}, { key: KEYS.providerA }), 401, 'a provider key used as a client key');
    await expect(chat({}, { auth: `Basic ${KEYS.client}` }), 401, 'wrong scheme');
    await expect(chat({}, { auth: `Bearer ${KEYS.client} ${KEYS.client2}` }), 401, 'two tokens');
    // Admin endpoints.
    await expect(call('GET', '/v1/gateway/spend', { key: KEYS.client }), 403, 'client key on spend');
    await expect(call('GET', '/v1/gateway/spend', { key: KEYS.admin }), 200, 'admin spend');
    await expect(call('GET', '/v1/gateway/providers', { key: KEYS.admin }), 200, 'admin providers');
    await expect(call('GET', '/v1/gateway/spend?from=bad', { key: KEYS.admin }), 400, 'bad spend query');
    // Provider faults whose bodies echo the provider key.
    await expect(chat({ x_case: '401' }), 200, 'provider 401 echoing its key: fails over');
    await expect(call('POST', '/v1/chat/completions', { body: chatBody('solo', { x_case: '403' }) }), 502, 'provider 403 alone');
    await expect(chat({ x_case: '400-echo' }), 400, 'provider 400 echoing its key: relayed as the client error');
    await expect(chat({ x_case: '500-echo' }), 200, 'provider 500 echoing its key: fails over');
    await expect(call('POST', '/v1/chat/completions', { body: chatBody('solo', { x_case: '500-echo' }) }), 502, 'provider 500 alone');
    await expect(call('POST', '/v1/chat/completions', { body: chatBody('solo', { x_case: '429-echo' }) }), 429, 'provider 429 alone');
    await expect(chat({ x_case: 'invalid-json' }), 200, 'invalid JSON: fails over');
    await expect(chat({ x_case: 'cut', stream: true }), 200, 'stream cut (SSE error event)');
    await expect(call('POST', '/v1/moderations', { body: { input: 'x' } }), 502, 'pass-through: provider 401 echoing its key');
    await expect(call('POST', '/v1/moderations', { body: { input: 'x', x_case: '400-echo' } }), 400, 'pass-through: provider 400 echoing its key');
    await expect(call('GET', '/v1/files', {}), 404, 'a path not in the pass-through allowlist');
    // Bad input that carries secrets in odd places.
    await expect(chat({}, { headers: { 'x-api-key': KEYS.client2, cookie: `session=${KEYS.admin}` } }), 200, 'keys in other headers are not logged');
    await expect(call('POST', '/v1/chat/completions', { body: `{"model":"${KEYS.providerB}","messages":[` }), 400, 'invalid JSON with a key inside');
    await expect(call('POST', '/v1/chat/completions', { body: chatBody(KEYS.providerB) }), 404, 'a key as the model name is echoed only to its sender... not logged');
    // Redis goes away and comes back (reconnect errors, fallbacks, buffered spend).
    await redis.stop();
    await waitFor(async () => (await metricValue(gw.metricsUrl, 'aigw_redis_up')) === 0, 'redis down');
    await expect(chat(), 200, 'served while Redis is down');
    await expect(call('GET', '/v1/gateway/spend', { key: KEYS.admin }), 503, 'spend report while Redis is down');
    await redis.restart();
    await waitFor(async () => (await metricValue(gw.metricsUrl, 'aigw_redis_up')) === 1, 'redis back', 8000);
    await expect(chat(), 200, 'served after Redis returned');

    // A second gateway given a wrong Redis password: its reconnect errors are logged without it.
    const wrong = secret('wrong-pw-');
    const gw2 = await startTestGateway({
      server: { log_level: 'trace' },
      auth: { mode: 'none' },
      providers: [{ name: 'b', base_url: b.url, api_key: KEYS.providerB, models: [{ name: 'm', unpriced: true }] }],
      redis: { url: redis.url.replace(encodeURIComponent(KEYS.redisPassword), wrong), command_timeout_ms: 100 },
    });
    await new Promise((r) => setTimeout(r, 300));
    await expect(post2(gw2.url), 200, 'served with Redis refusing the password');
    await gw2.shutdown();
    assert.ok(!gw2.logs.join('\n').includes(wrong), 'a wrong Redis password is not logged');

    const metricsText = await (await fetch(gw.metricsUrl)).text();
    const logs = [...gw.logs, ...gw2.logs].join('\n');
    assert.ok(gw.logs.length > 30, 'trace logging captured the run');
    assert.ok(logs.includes('redis unreachable'), 'the Redis outage was logged');
    // The model-name case above deliberately sends providerB's key back to its own sender in the
    // 404 message; every other response must be clean, so check that one separately.
    const responses = seen.filter((s) => !s.startsWith('404 ')).join('\n');
    for (const [name, value] of Object.entries(KEYS)) {
      const variants = [value, encodeURIComponent(value), Buffer.from(value).toString('base64')];
      for (const v of variants) {
        assert.ok(!responses.includes(v), `${name} appears in a response`);
        assert.ok(!logs.includes(v), `${name} appears in a log line`);
        assert.ok(!metricsText.includes(v), `${name} appears in /metrics`);
      }
    }
  });
});

describe('admin key and key lookup by digest', () => {
  it('admin endpoints: 403 without a key and with a client key, 200 with the admin key', async () => {
    const up = await startFakeUpstream('up');
    const gw = await startTestGateway({
      server: { log_level: 'warn' },
      auth: { keys: [{ hash: hashKey(KEYS.client), name: 'client', team: 'red', project: 'web' }], admin_key_hashes: [hashKey(KEYS.admin)] },
      providers: [{ name: 'up', base_url: up.url, models: [{ name: 'm', unpriced: true }] }],
    });
    try {
      for (const path of ['/v1/gateway/spend', '/v1/gateway/providers']) {
        for (const [auth, status] of [
          [undefined, 403],
          [`Bearer ${KEYS.client}`, 403],
          [`Bearer ${KEYS.admin}x`, 403],
          [`Bearer ${KEYS.admin.slice(0, -1)}`, 403],
          [KEYS.admin, 403],
          [`Bearer ${KEYS.admin}`, 200],
          [`bearer   ${KEYS.admin}`, 200],
        ] as const) {
          const res = await fetch(`${gw.url}${path}`, { headers: auth ? { authorization: auth } : {} });
          assert.equal(res.status, status, `${path} with ${auth === undefined ? 'no key' : auth.slice(0, 12)}`);
          if (status === 403) assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'admin_key_required');
          else await res.arrayBuffer();
        }
      }
      // The admin key is not a client key: it cannot call the inference endpoints.
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.admin}`, 'content-type': 'application/json' },
        body: JSON.stringify(chatBody('m')),
      });
      assert.equal(res.status, 401);
      await res.arrayBuffer();
      assert.equal(up.received.length, 0);
    } finally {
      await gw.shutdown();
      await up.close();
    }
  });

  it('a presented key is hashed once and looked up by its sha256 digest in the config and the store, hit or miss: never by the key itself', () => {
    const crypto = require('node:crypto') as typeof import('node:crypto');
    const original = crypto.hash;
    const hashed: string[] = [];
    (crypto as { hash: typeof original }).hash = ((algorithm: string, data: string, encoding?: string) => {
      hashed.push(`${algorithm}:${data}`);
      return original(algorithm, data, encoding as 'hex');
    }) as typeof original;
    const looked: string[] = [];
    const store = {
      findDigest: (digest: string) => {
        looked.push(digest);
        return digest === original('sha256', 'runtime-key', 'hex') ? { keyName: 'rt', team: 't', project: 'p', keyId: 'k1' } : undefined;
      },
      noteUsed: () => undefined,
      team: () => undefined,
      hasTeams: () => false,
    };
    try {
      const keys = ['k0', 'k1', 'k2', 'k3'].map((k, i) => ({ hash: hashKey(k), name: `n${i}`, team: 't', project: 'p' }));
      const ring = createKeyRing({ mode: 'keys', keys, admin_key_hashes: [hashKey('adm0'), hashKey('adm1')] }, store as never);
      const resolve = (token: string) => {
        hashed.length = 0;
        looked.length = 0;
        const r = ring.resolve(`Bearer ${token}`);
        // One digest for both sets; the store sees the digest, fixed-length hex, never the key.
        assert.deepEqual(hashed, [`sha256:${token}`]);
        assert.deepEqual(looked, [original('sha256', token, 'hex')]);
        assert.match(looked[0], /^[0-9a-f]{64}$/);
        return r;
      };
      assert.equal((resolve('k0') as { keyName: string }).keyName, 'n0');
      assert.equal((resolve('k3') as { keyName: string }).keyName, 'n3');
      assert.equal((resolve('runtime-key') as { keyName: string }).keyName, 'rt', 'the store is searched by the same digest');
      assert.equal(resolve('nope'), 'unknown', 'a miss searches both too');
      assert.equal(ring.isAdmin('Bearer adm0'), true);
      assert.equal(ring.isAdmin('Bearer k0'), false, 'a client key is not an admin key');
    } finally {
      (crypto as { hash: typeof original }).hash = original;
    }
  });
});
