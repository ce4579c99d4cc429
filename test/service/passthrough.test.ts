/**
 * The pass-through, closed by default: an unlisted path is 404 and reaches no provider; an
 * allowlisted one is authenticated, admitted (key limits, budgets), counted and priced; the
 * objects it creates are private to the creating team (recorded in Redis with their
 * lifetime). Through the real openai SDK against a fake provider, with a real redis-server.
 */
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import OpenAI, { toFile } from 'openai';
import { parseConfig } from '../../service/config/schema';
import { decidePassthrough, priceAnswer } from '../../service/http/passthrough';
import { hashKey } from '../../service/tenancy/keys';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { metricValue, provider, spendTotals, startTestGateway, TestGateway, waitForSpend } from '../helpers/gateway';
import { RedisServer, startRedis } from '../helpers/redis-server';

const KEYS = { alice: 'sk-gw-pt-alice', bob: 'sk-gw-pt-bob', carol: 'sk-gw-pt-carol', slow: 'sk-gw-pt-slow', admin: 'sk-gw-pt-admin' };

const PASSTHROUGH = [
  { path: '/v1/moderations', methods: ['POST' as const] },
  { path: '/v1/images/generations', methods: ['POST' as const], price: { per_image_usd: 0.04 } },
  { path: '/v1/files', methods: ['GET' as const, 'POST' as const, 'DELETE' as const], body_limit_bytes: 4096 },
  { path: '/v1/batches', methods: ['POST' as const] },
  { path: '/v1/embeddings-legacy', methods: ['POST' as const], provider: 'quota' },
];

describe('pass-through: closed by default, admitted, counted, objects private per team', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let up: FakeUpstream;
  let gw: TestGateway;
  let alice: OpenAI;
  let bob: OpenAI;
  const sdk = (key: string) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0 });
  const raw = (method: string, path: string, key: string, body?: unknown) =>
    fetch(`${gw.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  before(async () => {
    redis = await startRedis();
    up = await startFakeUpstream('up');
    gw = await startTestGateway({
      auth: {
        keys: [
          { hash: hashKey(KEYS.alice), name: 'alice', team: 'red' },
          { hash: hashKey(KEYS.bob), name: 'bob', team: 'blue' },
          { hash: hashKey(KEYS.carol), name: 'carol', team: 'yellow' },
          { hash: hashKey(KEYS.slow), name: 'slow', team: 'green', rate_limit: { requests_per_minute: 1 } },
        ],
        admin_key_hashes: [hashKey(KEYS.admin)],
      },
      teams: [{ name: 'red' }, { name: 'blue', budget: { daily_usd: 0.05 } }, { name: 'green' }, { name: 'yellow' }],
      providers: [provider('up', up.url, ['m']), provider('quota', up.url, ['q'], { rate_limit: { requests_per_minute: 1 } })],
      passthrough: PASSTHROUGH,
      redis: { url: redis.url, command_timeout_ms: 2000 }, // not a test of Redis timeouts (100 ms flaps on a busy machine)
    });
    alice = sdk(KEYS.alice);
    bob = sdk(KEYS.bob);
    const until = Date.now() + 5000;
    while ((await metricValue(gw.metricsUrl, 'aigw_redis_up')) !== 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
  });
  after(async () => {
    await gw.shutdown();
    await up.close();
    await redis.close();
  });

  const spend = (team: string) => spendTotals(gw.url, KEYS.admin, team);
  const waitSpend = (team: string, requests: number) => waitForSpend(gw.url, KEYS.admin, team, requests);

  for (const [method, path] of [
    ['POST', '/v1/audio/speech'],
    ['GET', '/v1/fine_tuning/jobs'],
    ['POST', '/v1/assistants'],
    ['DELETE', '/v1/moderations'],
    ['GET', '/v1/batches/batch_1'],
  ] as const) {
    it(`${method} ${path} (not allowlisted): 404 unknown_url, nothing sent upstream`, async () => {
      const n = up.received.length;
      const res = await raw(method, path, KEYS.alice, method === 'POST' ? { model: 'tts-1', input: 'x' } : undefined);
      assert.equal(res.status, 404);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'unknown_url');
      assert.equal(up.received.length, n);
    });
  }

  it('an allowlisted path still needs a gateway key', async () => {
    const res = await fetch(`${gw.url}/v1/moderations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"input":"x"}' });
    assert.equal(res.status, 401);
  });

  it('moderations: relayed with the provider key, counted in aigw_requests_total and the spend report (unpriced)', async () => {
    const before = await spend('red');
    const r = await alice.moderations.create({ input: 'hello' });
    assert.equal(r.results[0].flagged, false);
    const sent = up.received[up.received.length - 1];
    assert.deepEqual([sent.path, sent.headers.authorization], ['/v1/moderations', 'Bearer sk-provider-up-secret']);
    assert.equal(await metricValue(gw.metricsUrl, 'aigw_requests_total', { endpoint: '/v1/moderations', team: 'red', provider: 'up', status_class: '2xx' }), 1);
    const after = await waitSpend('red', before.requests + 1);
    assert.equal(after.unpriced_requests - before.unpriced_requests, 1);
  });

  // Before the budget test below spends team blue's budget: admission (429) comes before the ownership checks (404).
  it("files: one team cannot read, download, delete or reference another team's file id; listing is refused", async () => {
    const file = await alice.files.create({ file: await toFile(Buffer.from('{"a":1}\n'), 'data.jsonl'), purpose: 'batch' });
    assert.match(file.id, /^file-/);
    assert.equal((await alice.files.retrieve(file.id)).id, file.id);
    const r = new Redis(redis.url);
    const ttl = await r.ttl(`aigw:obj:${file.id}`);
    r.disconnect();
    assert.ok(ttl > 29 * 86400 && ttl <= 30 * 86400, `owner record lives with the object (ttl ${ttl})`);

    // Another team with room in its budget (admission comes first: blue, over budget by now, would get 429).
    const carol = sdk(KEYS.carol);
    const n = up.received.length;
    await assert.rejects(carol.files.retrieve(file.id), OpenAI.NotFoundError);
    await assert.rejects(carol.files.content(file.id), OpenAI.NotFoundError);
    await assert.rejects(carol.files.delete(file.id), OpenAI.NotFoundError);
    await assert.rejects(carol.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }), OpenAI.NotFoundError);
    const fileInput = [{ role: 'user' as const, content: [{ type: 'input_file' as const, file_id: file.id }] }];
    await assert.rejects(
      carol.responses.create({ model: 'm', input: fileInput }),
      (err: unknown) => err instanceof OpenAI.NotFoundError && (err as InstanceType<typeof OpenAI.APIError>).code === 'object_not_found',
    );
    await assert.rejects(carol.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: file.id } }] }] }), OpenAI.NotFoundError);
    await assert.rejects(carol.files.list(), (err: unknown) => err instanceof OpenAI.PermissionDeniedError && (err as InstanceType<typeof OpenAI.APIError>).code === 'listing_not_allowed');
    assert.equal(up.received.length, n, 'none of it reached the provider');

    assert.equal(await (await alice.files.content(file.id)).text(), `contents of ${file.id}\n`);
    await alice.responses.create({ model: 'm', input: fileInput }); // the owner may use it
    await alice.files.delete(file.id);
    await assert.rejects(alice.files.retrieve(file.id), OpenAI.NotFoundError);
  });

  it("the provider's quota covers pass-through calls to it", async () => {
    assert.equal((await raw('POST', '/v1/embeddings-legacy', KEYS.alice, { input: 'x' })).status, 404, 'the fake has no such route: relayed as it answered');
    const second = await raw('POST', '/v1/embeddings-legacy', KEYS.alice, { input: 'x' });
    assert.equal(second.status, 429);
    assert.equal(((await second.json()) as { error: { code: string } }).error.code, 'provider_quota_exceeded');
  });

  it('the key rate limit applies to pass-through paths', async () => {
    const slow = sdk(KEYS.slow);
    await slow.moderations.create({ input: 'x' });
    await assert.rejects(slow.moderations.create({ input: 'x' }), OpenAI.RateLimitError);
  });

  it('images priced per image; a spent budget then refuses the next call with 429', async () => {
    const bobImages = await bob.images.generate({ prompt: 'a cat', n: 2 });
    assert.equal(bobImages.data?.length, 2);
    const after = await waitSpend('blue', 1);
    assert.ok(Math.abs(after.cost_usd - 0.08) < 1e-9, `cost ${after.cost_usd}`);
    const n = up.received.length;
    await assert.rejects(bob.images.generate({ prompt: 'a dog' }), (err: unknown) => err instanceof OpenAI.RateLimitError && (err as InstanceType<typeof OpenAI.APIError>).code === 'budget_exceeded');
    assert.equal(up.received.length, n);
  });

  it('an upload over the entry body limit is 413 and never reaches the provider', async () => {
    const n = up.received.length;
    await assert.rejects(alice.files.create({ file: await toFile(Buffer.alloc(8192, 'a'), 'big.jsonl'), purpose: 'batch' }), (err: unknown) => (err as { status?: number }).status === 413);
    assert.equal(up.received.length, n);
  });
});

describe('pass-through decisions and config', () => {
  const entries = parseConfig({
    auth: { keys: [{ hash: hashKey('k'), name: 'k', team: 't' }] },
    providers: ['p', 'quota'].map((name) => ({ name, base_url: 'http://127.0.0.1:1/v1', models: [{ name: 'm', unpriced: true }] })),
    passthrough: PASSTHROUGH,
  }).passthrough;
  const cases: Array<[string, string, string]> = [
    ['POST', '/v1/moderations', 'forward /v1/moderations'],
    ['GET', '/v1/moderations', 'refuse unknown_url'],
    ['POST', '/v1/files', 'forward /v1/files'],
    ['GET', '/v1/files', 'refuse listing_not_allowed'],
    ['GET', '/v1/files/file-1/content', 'forward /v1/files'],
    ['POST', '/v1/batches', 'forward /v1/batches'],
    ['GET', '/v1/batches', 'refuse unknown_url'],
    ['GET', '/v1/responses/resp_1', 'forward responses_object'],
    ['GET', '/v1/responses/resp_1/input_items', 'forward responses_object'],
    ['DELETE', '/v1/responses/resp_1', 'forward responses_object'],
    ['POST', '/v1/responses/resp_1', 'refuse unknown_url'],
    ['GET', '/v1/responses', 'refuse unknown_url'],
    ['POST', '/v1/audio/speech', 'refuse unknown_url'],
  ];
  for (const [method, path, want] of cases) {
    it(`${method} ${path} -> ${want}`, () => {
      const d = decidePassthrough(method, path, entries);
      assert.equal(d.kind === 'forward' ? `forward ${d.label}` : `refuse ${d.error.code}`, want);
    });
  }

  it('prices: usage at token prices, else per image, else per request, else unpriced', () => {
    const usage = { usage: { prompt_tokens: 1000, completion_tokens: 0 } };
    assert.equal(priceAnswer({ ...entries[0], price: { input_per_million: 2 } }, usage).costUsd, 0.002);
    assert.equal(priceAnswer(entries[1], { data: [{}, {}, {}] }).costUsd, 0.12);
    assert.deepEqual(priceAnswer({ ...entries[0], price: { per_request_usd: 0.01 } }, {}).costUsd, 0.01);
    assert.equal(priceAnswer(entries[0], {}).unpriced, true);
  });

  it('auth.mode none refuses a pass-through allowlist, naming both keys', () => {
    assert.throws(
      () =>
        parseConfig({ auth: { mode: 'none' }, providers: [{ name: 'p', base_url: 'http://127.0.0.1:1/v1', models: [{ name: 'm' }] }], passthrough: [{ path: '/v1/moderations', methods: ['POST'] }] }),
      /passthrough: auth\.mode "none" refuses a pass-through allowlist/,
    );
  });

  it('a path inside an object collection cannot be allowlisted on its own (it would skip the owner check)', () => {
    assert.throws(
      () =>
        parseConfig({
          auth: { keys: [{ hash: hashKey('k'), name: 'k', team: 't' }] },
          providers: [{ name: 'p', base_url: 'http://127.0.0.1:1/v1', models: [{ name: 'm' }] }],
          passthrough: [{ path: '/v1/files/file-abc', methods: ['GET'] }],
        }),
      /passthrough\[0\]\.path: is inside the object collection \/v1\/files/,
    );
  });
});
