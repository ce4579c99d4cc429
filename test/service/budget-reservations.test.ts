/**
 * Budgets hold each admitted request's maximum cost until it is settled (docs/tenancy.md, "Cost
 * and budgets"): through real HTTP, the `openai` SDK as client, a real redis-server, and a
 * provider that holds every request until the test answers it with usage = the request's max
 * tokens. Nothing here depends on timing: the test waits until each request is either refused or
 * held by the provider, then reads what the budget counters hold.
 */
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import OpenAI from 'openai';
import { toNanoUsd } from '../../service/cost/cost';
import { budgetKey } from '../../service/cost/spend';
import { utcPeriods } from '../../service/tenancy/budget';
import { hashKey } from '../../service/tenancy/keys';
import { metricValue, provider, spendTotals, startTestGateway, TestGateway } from '../helpers/gateway';
import { HeldUpstream, startHeldUpstream } from '../helpers/held-upstream';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { waitFor as waitUntil } from '../tenancy/fixtures';

const KEY = 'sk-gw-reserve-client';
const LIMITED = 'sk-gw-reserve-limited';
const ADMIN = 'sk-gw-reserve-admin';
const BUDGET_USD = 0.01;
/** $1 per million output tokens, input free: a request's cost is its output tokens in micro-dollars. */
const OUT_ONLY = { name: 'm-out', input_per_million: 0, output_per_million: 1 };
/** Input priced, and its own reserve for requests without max tokens. */
const RESERVED = { name: 'm-reserve', input_per_million: 2, output_per_million: 1, reserve_output_tokens: 1000 };

describe('budget reservations: a request holds its maximum cost from admission until it is settled', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let up: HeldUpstream;
  let gw: TestGateway;
  let reader: Redis;
  let prefix = '';
  let n = 0;

  before(async () => {
    redis = await startRedis();
    reader = new Redis(redis.url);
  });
  after(async () => {
    reader.disconnect();
    await redis.close();
  });
  beforeEach(async () => {
    up = await startHeldUpstream();
    prefix = `rsv${n++}:`;
    gw = await startTestGateway({
      auth: {
        keys: [
          { hash: hashKey(KEY), name: 'app', team: 'research', project: 'p' },
          { hash: hashKey(LIMITED), name: 'limited', team: 'research', project: 'p', rate_limit: { requests_per_minute: 1 } },
        ],
        admin_key_hashes: [hashKey(ADMIN)],
      },
      teams: [{ name: 'research', budget: { daily_usd: BUDGET_USD } }],
      routing: { max_retries: 0 },
      providers: [provider('up', up.url, [OUT_ONLY, RESERVED])],
      redis: { url: redis.url, key_prefix: prefix, command_timeout_ms: 2000 }, // not a test of Redis timeouts (100 ms flaps on a busy machine)
    });
    await waitUntil(async () => (await metricValue(gw.metricsUrl, 'aigw_redis_up')) === 1, 'redis up');
  });
  afterEach(async () => {
    up.answerAll();
    await gw.shutdown();
    await up.close();
  });

  const client = (key = KEY) => new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0 });
  /** The team's daily budget counter in Redis (spend plus reservations held), nano-USD. */
  const dayCounter = async () => {
    const { day, month } = utcPeriods(Date.now());
    return Number((await reader.hget(`${prefix}${budgetKey('research', month)}`, `d:${day}`)) ?? 0);
  };
  /** The counter once the spend writes have gone out (coalesced: up to 50 ms after the request). */
  const settledCounter = async (expected: number) => {
    await waitUntil(async () => (await dayCounter()) === expected, `the budget counter to read ${expected}`).catch(() => undefined);
    return dayCounter();
  };
  const chat = (c: OpenAI, model: string, maxTokens?: number) =>
    c.chat.completions.create({ model, messages: [{ role: 'user', content: 'Write at length.' }], ...(maxTokens ? { max_tokens: maxTokens } : {}) });

  it('20 concurrent requests, each able to cost a third of the budget: 3 are admitted, 17 refused with budget_exceeded; settled spend <= budget + one maximum cost', async () => {
    const maxTokens = 3334; // $0.003334 at most each: three reach the $0.01 budget
    const maxCost = maxTokens / 1e6;
    let finished = 0;
    const calls = Array.from({ length: 20 }, () =>
      chat(client(), 'm-out', maxTokens)
        .then(
          (r) => ({ ok: r, err: undefined }),
          (err: unknown) => ({ ok: undefined, err }),
        )
        .finally(() => finished++),
    );
    // Every request is either refused already or held by the provider (nothing has been billed yet).
    await waitUntil(() => finished + up.held.length === 20, 'every request refused or held upstream');
    const admitted = up.held.length;
    assert.equal(admitted, 3, `admitted while the budget was not used up by the reservations: ${admitted}`);
    assert.equal(await settledCounter(toNanoUsd(3 * maxCost)), toNanoUsd(3 * maxCost), 'the held requests reserve their maximum cost');
    up.answerAll();
    const results = await Promise.all(calls);
    const refused = results.filter((r) => r.err);
    assert.equal(refused.length, 17);
    for (const { err } of refused) assert.ok(err instanceof OpenAI.RateLimitError && err.code === 'budget_exceeded', String(err));
    const totals = await spendTotals(gw.url, ADMIN, 'research');
    assert.equal(totals.requests, 3);
    assert.ok(totals.cost_usd <= BUDGET_USD + maxCost + 1e-12, `settled $${totals.cost_usd} <= budget + one maximum cost`);
    assert.equal(await settledCounter(toNanoUsd(totals.cost_usd)), toNanoUsd(totals.cost_usd), 'the counter holds the settled spend once nothing is in flight');
    await assert.rejects(chat(client(), 'm-out', 1), (e: unknown) => e instanceof OpenAI.RateLimitError && e.code === 'budget_exceeded');
  });

  it("a request without max tokens reserves its model's reserve_output_tokens, else routing.reserve_output_tokens (4096); settled on its usage", async () => {
    const body = JSON.stringify({ model: 'm-reserve', messages: [{ role: 'user', content: 'No limit set.' }] });
    const inputTokens = Math.ceil(Buffer.byteLength(body) / 4);
    const sent = fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body });
    await waitUntil(() => up.held.length === 1, 'the request held upstream');
    const modelReserve = toNanoUsd((inputTokens * 2 + 1000 * 1) / 1e6);
    assert.equal(await settledCounter(modelReserve), modelReserve, 'expected input at the input price + the model reserve at the output price');
    const other = chat(client(), 'm-out');
    await waitUntil(() => up.held.length === 2, 'the second request held upstream');
    const gatewayReserve = toNanoUsd((4096 * 1) / 1e6);
    assert.equal(await settledCounter(modelReserve + gatewayReserve), modelReserve + gatewayReserve, 'the gateway default for a model without its own');
    up.answerAll(); // 10 output tokens each, no input
    assert.equal((await sent).status, 200);
    await other;
    const settled = toNanoUsd(10 / 1e6) * 2;
    assert.equal(await settledCounter(settled), settled, 'the reservations are replaced by the costs');
  });

  it('a request asking for n choices holds n times its maximum output', async () => {
    const call = client().chat.completions.create({ model: 'm-out', messages: [{ role: 'user', content: 'Three ways.' }], max_tokens: 500, n: 3 });
    await waitUntil(() => up.held.length === 1, 'the request held upstream');
    assert.equal(await settledCounter(toNanoUsd((3 * 500) / 1e6)), toNanoUsd((3 * 500) / 1e6));
    up.answerAll();
    await call;
  });

  it('a failed or refused request gives its reservation back: the counter returns to the settled spend', async () => {
    const first = chat(client(LIMITED), 'm-out', 1000);
    await waitUntil(() => up.held.length === 1, 'the request held upstream');
    assert.equal(await settledCounter(toNanoUsd(0.001)), toNanoUsd(0.001), 'held while in flight');
    // The key's second request this minute is refused by its rate limit after the budget admitted it.
    await assert.rejects(chat(client(LIMITED), 'm-out', 1000), (e: unknown) => e instanceof OpenAI.RateLimitError && e.code !== 'budget_exceeded');
    up.failAll(500);
    await assert.rejects(first, (e: unknown) => e instanceof OpenAI.APIError && (e.status ?? 0) >= 500);
    assert.equal(await settledCounter(0), 0, 'nothing billed, nothing held');
    const ok = chat(client(), 'm-out', 200);
    await waitUntil(() => up.held.length === 1, 'the next request held upstream');
    up.answerAll();
    await ok;
    assert.equal(await settledCounter(toNanoUsd(200 / 1e6)), toNanoUsd(200 / 1e6));
  });
});
