/**
 * POST /v1/responses as a routed endpoint, through the real openai SDK against fake
 * providers shaped from the Responses API reference: routed, failed over, streamed
 * (typed events relayed untouched), cut streams raised by the SDK, limited, budgeted,
 * cached and costed from its usage (cached and reasoning tokens included); stored responses
 * sticky to the provider that made them and private to the team; mapped model names
 * never reaching the client. Real redis-server for limits, spend and object owners.
 */
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import OpenAI from 'openai';
import { hashKey } from '../../service/tenancy/keys';
import { DEFAULT_CHUNKS, FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { responseEvents } from '../helpers/fake-responses';
import { metricValue, provider, spendTotals, startTestGateway, TestGateway, waitForSpend } from '../helpers/gateway';
import { RedisServer, startRedis } from '../helpers/redis-server';

const KEYS = { alice: 'sk-gw-resp-alice', bob: 'sk-gw-resp-bob', slow: 'sk-gw-resp-limited', poor: 'sk-gw-resp-poor', admin: 'sk-gw-resp-admin' };
const INTERNAL = 'internal-ckpt-7';

describe('POST /v1/responses: routed, streamed, limited and costed like chat', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let a: FakeUpstream;
  let b: FakeUpstream;
  let az: FakeUpstream;
  let gw: TestGateway;
  const sdk = (key: string) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0 });
  let alice: OpenAI;
  let bob: OpenAI;

  before(async () => {
    redis = await startRedis();
    a = await startFakeUpstream('a');
    b = await startFakeUpstream('b');
    az = await startFakeUpstream('az');
    gw = await startTestGateway({
      auth: {
        keys: [
          { hash: hashKey(KEYS.alice), name: 'alice', team: 'red' },
          { hash: hashKey(KEYS.bob), name: 'bob', team: 'blue' },
          { hash: hashKey(KEYS.slow), name: 'slow', team: 'red', rate_limit: { requests_per_minute: 2 } },
          { hash: hashKey(KEYS.poor), name: 'poor', team: 'broke' },
        ],
        admin_key_hashes: [hashKey(KEYS.admin)],
      },
      teams: [{ name: 'red' }, { name: 'blue' }, { name: 'broke', budget: { daily_usd: 0.00001 } }],
      providers: [
        provider(
          'a',
          a.url,
          [
            { name: 'gpt-x', upstream_name: INTERNAL, input_per_million: 1, cached_input_per_million: 0.5, output_per_million: 2 },
            { name: 'plain', input_per_million: 1, output_per_million: 2 },
          ],
          { priority: 1 },
        ),
        provider(
          'b',
          b.url,
          [
            { name: 'gpt-x', upstream_name: INTERNAL, input_per_million: 3, output_per_million: 4 },
            { name: 'plain', input_per_million: 3, output_per_million: 4 },
          ],
          { priority: 2 },
        ),
        provider('az', az.url, [{ name: 'az-only', upstream_name: 'my-deployment', unpriced: true }], { type: 'azure', api_version: '2024-10-21' }),
      ],
      models: { 'gpt-x': { strategy: 'priority' }, plain: { strategy: 'priority' }, fast: { strategy: 'priority', targets: [{ provider: 'a', model: 'plain' }] } },
      routing: { retry_delay_ms: 5, max_retries: 1 },
      rate_limit: { requests_per_minute: 1000 },
      cache: { enabled: true, ttl_seconds: 60 },
      redis: { url: redis.url, command_timeout_ms: 2000 }, // not a test of Redis timeouts (100 ms flaps on a busy machine)
    });
    alice = sdk(KEYS.alice);
    bob = sdk(KEYS.bob);
  });
  after(async () => {
    await gw.shutdown();
    await Promise.all([a.close(), b.close(), az.close()]);
    await redis.close();
  });
  beforeEach(() => {
    for (const u of [a, b]) u.setBehavior((req) => (req.body.stream ? { kind: 'stream' } : { kind: 'ok' }));
  });

  const spend = (team: string) => spendTotals(gw.url, KEYS.admin, team);
  const waitSpend = (team: string, requests: number) => waitForSpend(gw.url, KEYS.admin, team, requests);

  it('responses.create: routed by the catalog, costed from usage (cached input at its price), the requested model name in the answer', async () => {
    const before = await spend('red');
    const { data, response } = await alice.responses.create({ model: 'gpt-x', input: 'Say hi' }).withResponse();
    assert.equal(data.output_text, 'Hello from a');
    assert.equal(data.model, 'gpt-x');
    assert.equal(response.headers.get('x-gateway-provider'), 'a');
    const sent = a.received[a.received.length - 1];
    assert.deepEqual([sent.path, sent.body.model], ['/v1/responses', INTERNAL]);
    assert.equal(sent.body.stream_options, undefined, 'no chat-only stream_options added');
    // usage: 10 input of which 4 cached, 5 output of which 2 reasoning: (6 x 1 + 4 x 0.5 + 5 x 2) / 1e6
    const after = await waitSpend('red', before.requests + 1);
    assert.equal(after.prompt_tokens - before.prompt_tokens, 10);
    assert.equal(after.completion_tokens - before.completion_tokens, 5);
    assert.ok(Math.abs(after.cost_usd - before.cost_usd - 0.000018) < 1e-12, `cost ${after.cost_usd - before.cost_usd}`);
  });

  it('streams: typed events in order through the SDK, each with the requested model; usage from response.completed', async () => {
    const before = await spend('red');
    const stream = await alice.responses.create({ model: 'gpt-x', input: 'Count', stream: true });
    const types: string[] = [];
    let text = '';
    for await (const e of stream) {
      types.push(e.type);
      assert.ok(!JSON.stringify(e).includes(INTERNAL), `${e.type} carries the internal name`);
      if (e.type === 'response.output_text.delta') text += e.delta;
      if (e.type === 'response.completed') assert.equal(e.response.model, 'gpt-x');
    }
    assert.equal(text, DEFAULT_CHUNKS.join(''));
    assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    assert.equal(types[types.length - 1], 'response.completed');
    const after = await waitSpend('red', before.requests + 1);
    assert.equal(after.completion_tokens - before.completion_tokens, 5);
  });

  it('an unmapped model streams byte for byte what the provider sent, event by event', async () => {
    const res = await fetch(`${gw.url}/v1/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'plain', input: 'x', stream: true }),
    });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const body = await res.text();
    const id = `resp_a_${a.received.length}`;
    assert.equal(body, responseEvents(id, 'plain', DEFAULT_CHUNKS, true).join(''));
  });

  it('fails over before the first byte (500 on a), streaming and not', async () => {
    a.setBehavior(() => ({ kind: 'status', status: 500 }));
    const { data, response } = await alice.responses.create({ model: 'gpt-x', input: 'x' }).withResponse();
    assert.deepEqual([data.output_text, response.headers.get('x-gateway-provider'), response.headers.get('x-gateway-attempts')], ['Hello from b', 'b', '3']); // a tried twice (max_retries 1), then b
    const stream = await alice.responses.create({ model: 'gpt-x', input: 'x', stream: true });
    let text = '';
    for await (const e of stream) if (e.type === 'response.output_text.delta') text += e.delta;
    assert.equal(text, DEFAULT_CHUNKS.join(''));
    assert.equal(b.received[b.received.length - 1].body.stream, true);
  });

  it('a stream cut after the first byte, with nobody left to continue it, ends with an error event the SDK raises', async () => {
    a.setBehavior(() => ({ kind: 'stream', cutAfter: 5, delayMs: 20 }));
    b.setBehavior(() => ({ kind: 'status', status: 503 }));
    const stream = await alice.responses.create({ model: 'gpt-x', input: 'x', stream: true });
    const seen: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const e of stream) seen.push(e.type);
      })(),
      (err: unknown) => err instanceof OpenAI.APIError && (err as InstanceType<typeof OpenAI.APIError>).code === 'stream_interrupted',
    );
    assert.equal(seen[0], 'response.created');
    // Counted once the relay has finished, which may be just after the client read the error event.
    const until = Date.now() + 3000;
    while ((await metricValue(gw.metricsUrl, 'aigw_stream_interruptions_total', { provider: 'a' })) !== 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await metricValue(gw.metricsUrl, 'aigw_stream_interruptions_total', { provider: 'a' }), 1);
  });

  it('key rate limit: the third request in a minute gets 429, as on chat', async () => {
    const slow = sdk(KEYS.slow);
    await slow.responses.create({ model: 'plain', input: 'x' });
    await slow.chat.completions.create({ model: 'plain', messages: [{ role: 'user', content: 'x' }] });
    await assert.rejects(
      slow.responses.create({ model: 'plain', input: 'x' }),
      (err: unknown) => err instanceof OpenAI.RateLimitError && (err as InstanceType<typeof OpenAI.APIError>).code === 'rate_limit_exceeded',
    );
  });

  it('team budget: once spent, responses get 429 budget_exceeded', async () => {
    const poor = sdk(KEYS.poor);
    await poor.responses.create({ model: 'gpt-x', input: 'x' }); // costs 0.000018 > 0.00001
    await waitSpend('broke', 1);
    await assert.rejects(
      poor.responses.create({ model: 'gpt-x', input: 'x' }),
      (err: unknown) => err instanceof OpenAI.RateLimitError && (err as InstanceType<typeof OpenAI.APIError>).code === 'budget_exceeded',
    );
  });

  it('caching rules apply: temperature 0 is served from the cache the second time', async () => {
    const body = { model: 'plain', input: 'cache me', temperature: 0 };
    const first = await alice.responses.create(body).withResponse();
    const second = await alice.responses.create(body).withResponse();
    assert.deepEqual([first.response.headers.get('x-gateway-cache'), second.response.headers.get('x-gateway-cache')], ['miss', 'hit']);
    assert.equal(second.data.id, first.data.id);
  });

  it('an endpoint no candidate serves is 404 in the OpenAI shape (an Azure deployment without the Responses API)', async () => {
    const n = az.received.length;
    await assert.rejects(
      alice.responses.create({ model: 'az-only', input: 'x' }),
      (err: unknown) => err instanceof OpenAI.NotFoundError && (err as InstanceType<typeof OpenAI.APIError>).code === 'endpoint_not_supported',
    );
    assert.equal(az.received.length, n);
    const chat = await alice.chat.completions.create({ model: 'az-only', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(chat.model, 'az-only', 'the deployment name stays internal');
  });

  it('stored responses: retrieve, input_items and delete go to the provider that made it; other teams get 404', async () => {
    a.setBehavior(() => ({ kind: 'status', status: 503 }));
    const created = await alice.responses.create({ model: 'gpt-x', input: 'remember me' });
    a.setBehavior(() => ({ kind: 'ok' }));
    assert.ok(b.responses.has(created.id), 'made by b after failing over from a');
    const nA = a.received.length;

    const got = await alice.responses.retrieve(created.id);
    assert.deepEqual([got.id, got.model], [created.id, 'gpt-x']);
    const items = await alice.responses.inputItems.list(created.id);
    assert.equal((items.data[0] as { content: Array<{ text: string }> }).content[0].text, 'remember me');
    assert.equal(a.received.length, nA, 'nothing went to a');

    const nB = b.received.length;
    await assert.rejects(bob.responses.retrieve(created.id), OpenAI.NotFoundError);
    await assert.rejects(bob.responses.inputItems.list(created.id), OpenAI.NotFoundError);
    await assert.rejects(bob.responses.delete(created.id), OpenAI.NotFoundError);
    await assert.rejects(bob.responses.create({ model: 'gpt-x', input: 'x', previous_response_id: created.id }), OpenAI.NotFoundError);
    assert.equal(b.received.length, nB, "another team's requests never reached the provider");

    const next = await alice.responses.create({ model: 'gpt-x', input: 'and then', previous_response_id: created.id });
    assert.ok(b.responses.has(next.id), 'a continuation goes to the provider holding the previous response');
    await alice.responses.delete(created.id);
    assert.ok(!b.responses.has(created.id));
    await assert.rejects(alice.responses.retrieve(created.id), OpenAI.NotFoundError);
  });

  it('a streamed response is recorded for its team before its first event reaches the client', async () => {
    a.setBehavior(() => ({ kind: 'stream', delayMs: 20 }));
    const r = new Redis(redis.url);
    try {
      const stream = await alice.responses.create({ model: 'plain', input: 'x', stream: true });
      let owner: string | null = null;
      for await (const e of stream) if (e.type === 'response.created') owner = await r.get(`aigw:obj:${e.response.id}`);
      assert.equal(owner, 'red\u0000a');
    } finally {
      r.disconnect();
    }
  });

  it('stored-response reads are admitted and counted, their usage not counted twice', async () => {
    const s0 = await spend('red');
    const created = await alice.responses.create({ model: 'plain', input: 'x' });
    const before = await metricValue(gw.metricsUrl, 'aigw_requests_total', { endpoint: 'responses_object', team: 'red' });
    const spent = await waitSpend('red', s0.requests + 1);
    await alice.responses.retrieve(created.id);
    assert.equal(await metricValue(gw.metricsUrl, 'aigw_requests_total', { endpoint: 'responses_object', team: 'red' }), before + 1);
    const after = await waitSpend('red', spent.requests + 1);
    assert.deepEqual([after.requests - spent.requests, after.prompt_tokens - spent.prompt_tokens, after.cost_usd - spent.cost_usd], [1, 0, 0]);
    const slow = sdk(KEYS.slow);
    await assert.rejects(slow.responses.retrieve(created.id), OpenAI.RateLimitError);
  });

  it("a provider's 400 naming the upstream model is relayed with the requested name", async () => {
    a.setBehavior(() => ({
      kind: 'status',
      status: 400,
      body: { error: { message: `The model '${INTERNAL}' does not support 'reasoning.effort'.`, type: 'invalid_request_error', param: 'reasoning', code: 'unsupported_parameter' } },
    }));
    await assert.rejects(
      alice.responses.create({ model: 'gpt-x', input: 'x' }),
      (err: unknown) => err instanceof OpenAI.BadRequestError && err.message.includes("'gpt-x'") && !err.message.includes(INTERNAL),
    );
  });

  it('chat: a mapped model never shows its upstream name, in the body or any stream chunk', async () => {
    const chat = await alice.chat.completions.create({ model: 'gpt-x', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(chat.model, 'gpt-x');
    // An alias names the public model that answered it (its target), never an upstream name.
    const alias = await alice.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(alias.model, 'plain');
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEYS.alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-x', stream: true, messages: [{ role: 'user', content: 'x' }] }),
    });
    const text = await res.text();
    assert.ok(!text.includes(INTERNAL));
    assert.equal(text.split('"model":"gpt-x"').length - 1, DEFAULT_CHUNKS.length + 1);
    const line = gw.logs
      .map((l) => JSON.parse(l) as { upstream_model?: string; model?: string })
      .reverse()
      .find((l) => l.upstream_model === INTERNAL);
    assert.equal(line?.model, 'gpt-x', 'the upstream name is in the log line');
  });
});

describe('auth.mode none: nothing beyond the inference routes', function () {
  this.timeout(20_000);
  it('POST /v1/responses is served; stored-response reads are 404 unknown_url and reach no provider', async () => {
    const up = await startFakeUpstream('open');
    const gw = await startTestGateway({ auth: { mode: 'none' }, providers: [provider('open', up.url, ['m'])] });
    try {
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const created = await client.responses.create({ model: 'm', input: 'x' });
      const n = up.received.length;
      await assert.rejects(client.responses.retrieve(created.id), (err: unknown) => err instanceof OpenAI.NotFoundError && (err as InstanceType<typeof OpenAI.APIError>).code === 'unknown_url');
      await assert.rejects(client.moderations.create({ input: 'x' }), OpenAI.NotFoundError);
      assert.equal(up.received.length, n);
    } finally {
      await gw.shutdown();
      await up.close();
    }
  });
});
