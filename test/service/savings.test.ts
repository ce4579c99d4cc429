/**
 * The pricing rule the gateway applies (cost/cost.ts priceRequest): cost at the serving
 * provider's prices; list cost at models.<name>.list_price; without a list price, no savings
 * are claimed (docs/tenancy.md), neither for routing nor for cache hits.
 */
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { metricValue, provider, startTestGateway, TestGateway } from '../helpers/gateway';

type Figures = { requests: number; cost_usd: number; list_cost_usd: number; savings_usd: number; routing_savings_usd: number; cache_savings_usd: number };

describe('savings: list price and the priced request', () => {
  let cheap: FakeUpstream;
  let pricey: FakeUpstream;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    cheap = await startFakeUpstream('cheap');
    pricey = await startFakeUpstream('pricey');
    // Fake usage: 10 prompt + 5 completion tokens per request.
    gw = await startTestGateway({
      auth: { mode: 'none' },
      providers: [
        provider('cheap', cheap.url, [
          { name: 'unlisted', input_per_million: 1, output_per_million: 2 },
          { name: 'listed', input_per_million: 1, output_per_million: 2 },
        ]),
        provider('pricey', pricey.url, [
          { name: 'unlisted', input_per_million: 10, output_per_million: 20 },
          { name: 'listed', input_per_million: 10, output_per_million: 20 },
        ]),
      ],
      models: { listed: { list_price: { input_per_million: 100, output_per_million: 200 } } },
      routing: { strategy: 'cost-optimal' },
      cache: { enabled: true },
    });
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused-in-auth-none', maxRetries: 0 });
  });
  after(async () => {
    await gw.shutdown();
    await cheap.close();
    await pricey.close();
  });

  const byModel = async (model: string): Promise<Figures> => {
    const report = (await (await fetch(`${gw.url}/v1/gateway/spend`)).json()) as { by_model: Array<Figures & { model: string }> };
    return report.by_model.find((m) => m.model === model)!;
  };

  it('a model without list_price: cost at the serving provider, list cost = cost, no savings (routing or cache)', async () => {
    const body = { model: 'unlisted', messages: [{ role: 'user' as const, content: 'hi' }], temperature: 0 };
    const first = await client.chat.completions.create(body).withResponse();
    assert.equal(first.response.headers.get('x-gateway-provider'), 'cheap');
    await new Promise((r) => setTimeout(r, 50)); // the cache is written after the response
    const hit = await client.chat.completions.create(body).withResponse();
    assert.equal(hit.response.headers.get('x-gateway-cache'), 'hit');
    const f = await byModel('unlisted');
    assert.equal(f.requests, 2);
    assert.ok(Math.abs(f.cost_usd - (10 * 1 + 5 * 2) / 1e6) < 1e-12, `cost ${f.cost_usd}`);
    assert.equal(f.list_cost_usd, f.cost_usd);
    assert.equal(f.savings_usd, 0);
    assert.equal(await metricValue(gw.metricsUrl, 'aigw_savings_usd_total', { model: 'unlisted' }), 0);
  });

  it('a model with list_price: list cost at the list price, routing and cache savings against it', async () => {
    const body = { model: 'listed', messages: [{ role: 'user' as const, content: 'hi' }], temperature: 0 };
    await client.chat.completions.create(body);
    await new Promise((r) => setTimeout(r, 50));
    await client.chat.completions.create(body);
    const f = await byModel('listed');
    const list = (10 * 100 + 5 * 200) / 1e6;
    const cost = (10 * 1 + 5 * 2) / 1e6;
    assert.ok(Math.abs(f.list_cost_usd - 2 * list) < 1e-12, `list cost ${f.list_cost_usd}`);
    assert.ok(Math.abs(f.routing_savings_usd - (list - cost)) < 1e-12);
    assert.ok(Math.abs(f.cache_savings_usd - list) < 1e-12);
    assert.ok(Math.abs((await metricValue(gw.metricsUrl, 'aigw_savings_usd_total', { model: 'listed' })) - (2 * list - cost)) < 1e-12);
  });
});
