/**
 * x-ratelimit-remaining-tokens comes from the admission of the same request: admission
 * reserves the request's expected tokens atomically, so concurrent requests each see what
 * remains after themselves; settle trues the reservation up to the actual usage, and a request
 * that is refused or fails gives it back. In-memory state here; the same limiter code runs on
 * Redis (test/tenancy/replicas.test.ts).
 */
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { GatewayError } from '../../service/core/errors';
import { createTenancy, GatewayTenancy } from '../../service/tenancy/tenancy';
import { hashKey } from '../../service/tenancy/keys';
import { settleDelta } from '../../service/tenancy/lease';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { provider, startTestGateway, TestGateway } from '../helpers/gateway';
import { KEYS, newMetrics, settlement, testConfig } from './fixtures';

const remaining = (h: Record<string, string>) => Number(h['x-ratelimit-remaining-tokens']);

describe('x-ratelimit-remaining-tokens and the admission of the same request', () => {
  let tenancy: GatewayTenancy;
  afterEach(() => tenancy?.close());

  it('concurrent admissions each report what remains after their own reservation', async () => {
    tenancy = createTenancy(testConfig({ rate_limit: { tokens_per_minute: 1000 } }), { redis: null, metrics: newMetrics() });
    const alice = tenancy.authenticate(`Bearer ${KEYS.alice}`);
    const admitted = await Promise.all([1, 2, 3].map(() => tenancy.admit(alice, 'gpt-x', 100)));
    assert.deepEqual(admitted.map((a) => remaining(a.headers)).sort(), [700, 800, 900]);
  });

  it('settle replaces the reservation by the actual usage', async () => {
    tenancy = createTenancy(testConfig({ rate_limit: { tokens_per_minute: 1000 } }), { redis: null, metrics: newMetrics() });
    const alice = tenancy.authenticate(`Bearer ${KEYS.alice}`);
    const a = await tenancy.admit(alice, 'gpt-x', 100);
    tenancy.settle(settlement(alice, 0.001, { usage: { prompt_tokens: 100, completion_tokens: 50 }, reservation: a.reservation, at: Date.now() }));
    const b = await tenancy.admit(alice, 'gpt-x', 0);
    assert.equal(remaining(b.headers), 850);
  });

  it('a refused request gives its reservation back (team tokens stay for the team)', async () => {
    const config = testConfig({
      auth: {
        keys: [
          { hash: hashKey(KEYS.alice), name: 'alice', team: 'red', rate_limit: { requests_per_minute: 1 } },
          { hash: hashKey(KEYS.bob), name: 'carol', team: 'red' },
        ],
      },
      teams: [{ name: 'red', rate_limit: { tokens_per_minute: 5000 } }],
    });
    tenancy = createTenancy(config, { redis: null, metrics: newMetrics() });
    const alice = tenancy.authenticate(`Bearer ${KEYS.alice}`);
    const carol = tenancy.authenticate(`Bearer ${KEYS.bob}`);
    assert.equal(remaining((await tenancy.admit(alice, 'gpt-x', 100)).headers), 4900);
    await assert.rejects(
      async () => tenancy.admit(alice, 'gpt-x', 100),
      (e: GatewayError) => e.status === 429 && e.headers['x-ratelimit-remaining-tokens'] === '4900',
    );
    assert.equal(remaining((await tenancy.admit(carol, 'gpt-x', 100)).headers), 4800);
  });

  it('settleDelta: the actual usage minus the reservation while its window lasts', () => {
    assert.equal(settleDelta(150, 0, -Infinity, 60_000), 150, 'no reservation');
    assert.equal(settleDelta(150, 100, 60_000, 60_000), 50);
    assert.equal(settleDelta(150, 100, 60_400, 60_000), 50, 'the same window seen from two clocks');
    assert.equal(settleDelta(0, 100, 60_000, 60_000), -100);
    assert.equal(settleDelta(150, 100, 60_000, 120_000), 150, 'the reservation ended with its window');
  });
});

describe('x-ratelimit-remaining-tokens over HTTP', () => {
  let up: FakeUpstream;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    up = await startFakeUpstream('p');
    gw = await startTestGateway({
      auth: { keys: [{ hash: hashKey(KEYS.alice), name: 'alice', team: 'red' }] },
      rate_limit: { tokens_per_minute: 100_000 },
      providers: [provider('p', up.url, ['m'])],
    });
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: KEYS.alice, maxRetries: 0 });
  });
  after(async () => {
    await gw.shutdown();
    await up.close();
  });

  const ask = async (content: string) => {
    const { response } = await client.chat.completions.create({ model: 'm', max_tokens: 50, messages: [{ role: 'user', content }] }).withResponse();
    return Number(response.headers.get('x-ratelimit-remaining-tokens'));
  };

  it('concurrent requests: every response counts itself, no two report the same value', async () => {
    up.setBehavior(() => ({ kind: 'ok', delayMs: 100 }));
    const values = await Promise.all(Array.from({ length: 5 }, (_, i) => ask(`concurrent ${i}`)));
    assert.equal(new Set(values).size, 5, `remaining-tokens: ${values.join(', ')}`);
    assert.ok(values.every((v) => v < 100_000));
  });

  it('a request that fails upstream gives its reservation back', async () => {
    await new Promise((r) => setTimeout(r, 50)); // settles of the previous test are in
    const base = await ask('base');
    up.setBehavior(() => ({ kind: 'status', status: 400, body: { error: { message: 'bad', type: 'invalid_request_error', code: 'bad' } } }));
    await assert.rejects(client.chat.completions.create({ model: 'm', max_tokens: 50, messages: [{ role: 'user', content: 'base' }] }));
    up.setBehavior(() => ({ kind: 'ok' }));
    const after = await ask('base');
    // base's reservation was trued up to its 15 tokens of usage; the failed request left nothing.
    assert.equal(after, base - 15);
  });
});
