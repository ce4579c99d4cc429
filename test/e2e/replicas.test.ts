/**
 * Three real gateway processes sharing one redis-server: one global rate limit, one budget,
 * one spend ledger; and Redis stopped and restarted under traffic without a client failure.
 */
import assert from 'node:assert/strict';
import { GatewayProcess, startGatewayProcess } from '../helpers/gateway-process';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { hashKey } from '../../service/tenancy/keys';
import { metricValue, waitForSpend } from '../helpers/gateway';

// The fake upstream reports 10 prompt + 5 completion tokens: at 100/200 USD per million that is
// exactly $0.002 a request.
const COST = (10 * 100 + 5 * 200) / 1e6;
const KEYS = { limited: 'sk-gw-e2e-limited', budgeted: 'sk-gw-e2e-budgeted', outage: 'sk-gw-e2e-outage', streamer: 'sk-gw-e2e-streamer', admin: 'sk-gw-e2e-admin' };

interface Reply {
  status: number;
  headers: Headers;
  body: { error?: { message: string; type: string; code: string } };
}

async function chat(gw: GatewayProcess, key: string): Promise<Reply> {
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Reply['body'] };
}

/** A team's spend report once it counts `requests` (spend writes are coalesced, SPEND_COALESCE_MS; a replica reconnecting to Redis answers 503 meanwhile). */
const spend = (gw: GatewayProcess, team: string, requests: number) => waitForSpend(gw.url, KEYS.admin, team, requests);

describe('three gateway replicas sharing one Redis', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let up: FakeUpstream;
  let replicas: GatewayProcess[] = [];

  before(async () => {
    redis = await startRedis();
    up = await startFakeUpstream('shared');
    const key = (name: keyof typeof KEYS, team: string, extra: Record<string, unknown> = {}) => ({ hash: hashKey(KEYS[name]), name, team, ...extra });
    const config = {
      auth: {
        keys: [key('limited', 'limited', { rate_limit: { requests_per_minute: 100, burst: 0 } }), key('budgeted', 'budgeted'), key('outage', 'outage'), key('streamer', 'streamer')],
        admin_key_hashes: [hashKey(KEYS.admin)],
      },
      teams: [{ name: 'limited' }, { name: 'budgeted', budget: { daily_usd: 0.02 } }, { name: 'outage' }, { name: 'streamer' }],
      providers: [{ name: 'shared', base_url: up.url, api_key: 'sk-provider-shared', models: [{ name: 'm', input_per_million: 100, output_per_million: 200, reserve_output_tokens: 5 }] }], // the fake answers 5 output tokens: what a request without max_tokens holds in the budget
      rate_limit: { requests_per_minute: 100_000, expected_replicas: 3 },
      redis: { url: redis.url, command_timeout_ms: 200 },
    };
    replicas = await Promise.all([0, 1, 2].map(() => startGatewayProcess(config)));
  });
  after(async () => {
    await Promise.all(replicas.map((r) => r.stop('SIGKILL')));
    await up?.close();
    await redis?.close();
  });

  it('a 100 requests/minute limit admits 100 in total across 3 replicas, not 300', async () => {
    const replies: Reply[] = [];
    for (let round = 0; round < 20; round++) {
      replies.push(...(await Promise.all(Array.from({ length: 15 }, (_, i) => chat(replicas[i % 3], KEYS.limited)))));
    }
    const ok = replies.filter((r) => r.status === 200).length;
    const limited = replies.filter((r) => r.status === 429);
    const fallbacks = await Promise.all(replicas.map((r) => metricValue(r.metricsUrl, 'aigw_rate_limit_fallbacks_total', { scope: 'key' })));
    assert.deepEqual(fallbacks, [0, 0, 0], 'no replica decided a request from its in-memory window');
    assert.equal(ok, 100);
    assert.equal(limited.length, 200);
    const one = limited[0];
    assert.equal(one.body.error?.code, 'rate_limit_exceeded');
    assert.equal(one.body.error?.type, 'rate_limit_error');
    assert.ok(Number(one.headers.get('retry-after')) >= 1);
    assert.equal(one.headers.get('x-ratelimit-limit-requests'), '100');
    assert.equal(one.headers.get('x-ratelimit-remaining-requests'), '0');
    assert.ok(one.headers.get('x-ratelimit-reset-requests'));
  });

  it('a budget is overshot by at most the stated bound (the last admission, and reservations other replicas had not written yet), and spend equals the sum of costs', async () => {
    let accepted = 0;
    let refused: Reply | undefined;
    for (let round = 0; round < 20 && !refused; round++) {
      const replies = await Promise.all(replicas.map((r) => chat(r, KEYS.budgeted))); // 3 in flight at once
      accepted += replies.filter((r) => r.status === 200).length;
      refused = replies.find((r) => r.status === 429);
    }
    const budgetRequests = Math.round(0.02 / COST); // 10
    assert.ok(accepted >= budgetRequests, `accepted ${accepted}`);
    // docs/tenancy.md: the last request admitted, plus what the two other replicas reserved before
    // this one's read saw it (at most two each); each reservation (maximum cost) covers its cost.
    assert.ok(accepted <= budgetRequests + 5, `accepted ${accepted}: overshoot beyond the stated bound`);
    assert.equal(refused?.body.error?.code, 'budget_exceeded');
    assert.equal(refused?.body.error?.type, 'insufficient_quota');
    assert.ok(Number(refused?.headers.get('retry-after')) >= 1, 'says when the budget resets');
    // Each replica writes its spend within SPEND_COALESCE_MS of the answer: the report is read once it has them all.
    const totals = await spend(replicas[1], 'budgeted', accepted);
    assert.equal(totals.requests, accepted);
    assert.ok(Math.abs(totals.cost_usd - accepted * COST) < 1e-9, `report ${totals.cost_usd} vs ${accepted * COST}`);
  });

  it('Redis stopped during traffic and restarted: zero client failures, spend preserved', async () => {
    const statuses: number[] = [];
    let stop = false;
    const traffic = (async () => {
      for (let i = 0; !stop; i++) statuses.push(...(await Promise.all(replicas.map((r) => chat(r, KEYS.outage)))).map((r) => r.status));
    })();
    await new Promise((r) => setTimeout(r, 500));
    await redis.stop({ keepData: true }); // a Redis with persistence going away
    const duringOutage = statuses.length;
    await new Promise((r) => setTimeout(r, 1500));
    await redis.restart();
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
    await traffic;
    assert.ok(statuses.length - duringOutage > 30, 'traffic flowed during and after the outage');
    assert.deepEqual([...new Set(statuses)], [200], 'every request succeeded');
    // Spend buffered while Redis was down is flushed once it is back.
    const totals = await spend(replicas[0], 'outage', statuses.length);
    assert.equal(totals.requests, statuses.length);
    assert.ok(Math.abs(totals.cost_usd - statuses.length * COST) < 1e-9);
  });

  it('streams are accounted from the usage chunk the gateway asks for; missing usage is estimated', async () => {
    const stream = async (usage: boolean) => {
      up.setBehavior((req) => (req.body.stream ? { kind: 'stream', usage } : { kind: 'ok' }));
      const res = await fetch(`${replicas[2].url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEYS.streamer}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hello there' }] }),
      });
      const text = await res.text();
      assert.equal(res.status, 200);
      assert.ok(!text.includes('"usage":{'), 'usage chunk hidden from a client that did not ask');
      assert.ok(text.trimEnd().endsWith('data: [DONE]'));
    };
    /** Spend is written when the stream ends, just after the client saw [DONE]. */
    const settled = (requests: number) => spend(replicas[0], 'streamer', requests);
    await stream(true);
    let totals = await settled(1);
    assert.deepEqual([totals.requests, totals.prompt_tokens, totals.completion_tokens, totals.estimated_requests], [1, 10, 6, 0]);
    await stream(false);
    totals = await settled(2);
    assert.equal(totals.requests, 2);
    assert.equal(totals.estimated_requests, 1);
    assert.ok(totals.completion_tokens > 6, 'estimated output tokens were added');
    up.setBehavior((req) => (req.body.stream ? { kind: 'stream' } : { kind: 'ok' }));
  });
});
