/**
 * Issue 22, item 2: unpriced means unpriced, not free. A model without prices is refused at
 * config load when a budget or a cost strategy could use it, unless it says `unpriced: true`;
 * through real HTTP (fake providers, a real redis-server), cost-optimal sends traffic to the
 * priced provider, not to the "free" unpriced one, and a request the unpriced one serves
 * (after the priced one fails) is counted in the spend report's unpriced_requests.
 */
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../service/config/schema';
import { hashKey } from '../../service/tenancy/keys';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { metricValue, startTestGateway, TestGateway, waitForSpend } from '../helpers/gateway';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { chatBody, post } from './helpers';

const KEYS = { client: 'sk-gw-unpriced-client', admin: 'sk-gw-unpriced-admin' };

const base = (model: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  auth: { mode: 'none' },
  providers: [{ name: 'p', base_url: 'http://127.0.0.1:1/v1', models: [{ name: 'm', ...model }] }],
  ...extra,
});
const problems = (raw: unknown): string[] => {
  try {
    parseConfig(raw);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
};

describe('issue 22 item 2: unpriced means unpriced, not free', function () {
  this.timeout(30_000);

  describe('config load', () => {
    it('a model without prices under cost-optimal (the default strategy) is refused, naming the model and the fix', () => {
      const p = problems(base({}));
      assert.equal(p.length, 1, p.join('\n'));
      assert.match(p[0], /^providers\[0\]\.models\[0\]: model "m" has no prices and a cost strategy routes it: .*unpriced: true/);
    });
    it('under balanced, or through an alias routed by cost-optimal, too', () => {
      assert.equal(problems(base({}, { routing: { strategy: 'balanced' } })).length, 1);
      assert.equal(problems(base({}, { routing: { strategy: 'priority' }, models: { alias: { strategy: 'cost-optimal', targets: [{ provider: 'p', model: 'm' }] } } })).length, 1);
    });
    it('when a team budget could use it, whatever the strategy', () => {
      const p = problems(base({}, { routing: { strategy: 'priority' }, teams: [{ name: 't', budget: { daily_usd: 1 } }] }));
      assert.match(p.join('\n'), /a team budget could use it/);
    });
    it('accepted with unpriced: true, or with a price, or when neither a budget nor a cost strategy could use it', () => {
      assert.deepEqual(problems(base({ unpriced: true })), []);
      assert.deepEqual(problems(base({ output_per_million: 1 })), []);
      assert.deepEqual(problems(base({}, { routing: { strategy: 'priority' } })), []);
    });
    it('unpriced: true on a model with prices is a contradiction, refused', () => {
      assert.match(problems(base({ unpriced: true, input_per_million: 1 })).join('\n'), /the model has prices: remove unpriced: true/);
    });
  });

  describe('through the gateway', () => {
    let redis: RedisServer;
    let free: FakeUpstream;
    let paid: FakeUpstream;
    let gw: TestGateway;
    let paidFails = false;

    before(async () => {
      redis = await startRedis();
      free = await startFakeUpstream('free');
      paid = await startFakeUpstream('paid', (req) => (paidFails ? { kind: 'status', status: 500 } : req.body.stream ? { kind: 'stream' } : { kind: 'ok' }));
      gw = await startTestGateway({
        auth: { keys: [{ hash: hashKey(KEYS.client), name: 'c', team: 'red' }], admin_key_hashes: [hashKey(KEYS.admin)] },
        teams: [{ name: 'red', budget: { daily_usd: 100 } }],
        routing: { strategy: 'cost-optimal', max_retries: 0, circuit_breaker: { consecutive_failures: 100 } },
        providers: [
          { name: 'free', base_url: free.url, api_key: 'sk-free', timeout_ms: 2000, models: [{ name: 'm', unpriced: true }] },
          { name: 'paid', base_url: paid.url, api_key: 'sk-paid', timeout_ms: 2000, models: [{ name: 'm', input_per_million: 1, output_per_million: 2 }] },
        ],
        redis: { url: redis.url, command_timeout_ms: 2000 }, // not a test of Redis timeouts (100 ms flaps on a busy machine)
      });
      const until = Date.now() + 5000;
      while ((await metricValue(gw.metricsUrl, 'aigw_redis_up')) !== 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 25));
    });
    after(async () => {
      await gw?.shutdown();
      await free?.close();
      await paid?.close();
      await redis?.close();
    });

    it('cost-optimal does not prefer the unpriced provider as free; what it serves is counted in unpriced_requests', async () => {
      for (let i = 0; i < 3; i++) {
        const r = await post(gw.url, '/v1/chat/completions', chatBody('m'), { authorization: `Bearer ${KEYS.client}` });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers.get('x-gateway-provider'), 'paid');
      }
      assert.equal(free.received.length, 0);
      paidFails = true;
      const r = await post(gw.url, '/v1/chat/completions', chatBody('m'), { authorization: `Bearer ${KEYS.client}` });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get('x-gateway-provider'), 'free', 'the unpriced provider is still a fallback');
      const totals = await waitForSpend(gw.url, KEYS.admin, 'red', 4);
      assert.equal(totals.requests, 4);
      assert.equal(totals.unpriced_requests, 1);
      assert.ok(totals.cost_usd > 0, 'the priced requests cost something');
      const report = (await (await fetch(`${gw.url}/v1/gateway/spend?team=red`, { headers: { authorization: `Bearer ${KEYS.admin}` } })).json()) as {
        by_provider: Array<{ provider: string; unpriced_requests: number; cost_usd: number }>;
      };
      const byFree = report.by_provider.find((p) => p.provider === 'free');
      assert.deepEqual([byFree?.unpriced_requests, byFree?.cost_usd], [1, 0]);
    });
  });
});
