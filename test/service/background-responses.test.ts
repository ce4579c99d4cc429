/**
 * Background responses are accounted: `POST /v1/responses` with `background: true` answers
 * `queued` with no usage; the gateway polls the provider and settles the request on the usage of
 * the finished response (100k output tokens here), so the team's budget then refuses the next
 * request. Until then the response holds its maximum cost in the budget. `routing.background_responses:
 * refuse` turns them away; a response still open at shutdown is settled on its estimate. The real
 * `openai` SDK is the client.
 */
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { hashKey } from '../../service/tenancy/keys';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { provider, startTestGateway, TestGateway } from '../helpers/gateway';

const KEY = 'sk-gw-background-client';
const PRICES = { input_per_million: 1, output_per_million: 1 }; // 100k output tokens: $0.10

async function registryValue(gw: TestGateway, name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await gw.metrics.registry.getMetricsAsJSON()).find((m) => m.name === name) as { values: Array<{ value: number; labels: Record<string, string> }> } | undefined;
  return (metric?.values ?? []).filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
}

describe('background responses', function () {
  this.timeout(20_000);
  let up: FakeUpstream;
  let gw: TestGateway;
  let client: OpenAI;

  const start = (routing: Record<string, unknown> = {}) =>
    startTestGateway({
      auth: { keys: [{ hash: hashKey(KEY), name: 'app', team: 'research', project: 'deep' }] },
      teams: [{ name: 'research', budget: { daily_usd: 0.05 } }],
      routing: { background_poll_ms: 30, ...routing },
      providers: [provider('up', up.url, [{ name: 'o-deep', ...PRICES }])],
    });

  before(async () => {
    up = await startFakeUpstream('up');
  });
  after(async () => {
    await up.close();
  });
  afterEach(async () => {
    await gw?.shutdown();
  });

  it('settled on the usage of the finished response, which then spends the budget', async () => {
    gw = await start();
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const created = await client.responses.create({ model: 'o-deep', input: 'Think hard.', background: true });
    assert.equal(created.status, 'queued');
    assert.equal(await registryValue(gw, 'aigw_cost_usd_total', { team: 'research' }), 0, 'nothing is settled before the response has run');
    const until = Date.now() + 5_000;
    while ((await registryValue(gw, 'aigw_cost_usd_total', { team: 'research' })) === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const cost = await registryValue(gw, 'aigw_cost_usd_total', { team: 'research', estimated: 'false' });
    assert.ok(Math.abs(cost - (10 + 100_000) / 1e6) < 1e-9, `settled on the reported usage: $${cost}`);
    assert.equal(await registryValue(gw, 'aigw_tokens_total', { team: 'research', direction: 'output' }), 100_000);
    await assert.rejects(client.responses.create({ model: 'o-deep', input: 'Again.' }), (e: unknown) => e instanceof OpenAI.RateLimitError && e.code === 'budget_exceeded');
  });

  it('holds its maximum cost in the budget from admission until it is settled, then its usage replaces it', async () => {
    gw = await start();
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: KEY, maxRetries: 0 });
    // Each may cost up to $0.03 (30k output tokens at $1/M): two fit under the $0.05 budget, held while they run.
    const first = await client.responses.create({ model: 'o-deep', input: 'Think hard.', background: true, max_output_tokens: 30_000 });
    up.responses.get(first.id)!.background!.polls = 1_000; // still running
    const second = await client.responses.create({ model: 'o-deep', input: 'Think harder.', background: true, max_output_tokens: 30_000 });
    up.responses.get(second.id)!.background!.polls = 1_000;
    assert.equal(await registryValue(gw, 'aigw_cost_usd_total', { team: 'research' }), 0, 'nothing settled yet');
    await assert.rejects(
      client.responses.create({ model: 'o-deep', input: 'A third.', max_output_tokens: 16 }),
      (e: unknown) => e instanceof OpenAI.RateLimitError && e.code === 'budget_exceeded',
      'the two running responses hold $0.06 of the $0.05 budget',
    );
    for (const r of [first, second]) {
      const s = up.responses.get(r.id)!.background!;
      s.final = { ...s.final, usage: { ...(s.final.usage as Record<string, unknown>), output_tokens: 1_000 } };
      s.polls = 0;
    }
    const until = Date.now() + 5_000;
    while ((await registryValue(gw, 'aigw_tokens_total', { team: 'research', direction: 'output' })) < 2_000 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await registryValue(gw, 'aigw_tokens_total', { team: 'research', direction: 'output' }), 2_000, 'both settled on their usage');
    const third = await client.responses.create({ model: 'o-deep', input: 'Now there is room.', max_output_tokens: 16 });
    assert.equal(third.status, 'completed', 'the reservations were replaced by $0.002 of usage');
  });

  it('a response still running at shutdown is settled on its estimate (max_output_tokens), marked estimated', async () => {
    gw = await start({ background_poll_ms: 60_000 });
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: KEY, maxRetries: 0 });
    await client.responses.create({ model: 'o-deep', input: 'Think hard.', background: true, max_output_tokens: 2_000 });
    up.responses.forEach((s) => s.background && (s.background.polls = 1_000)); // never finishes
    const metrics = gw.metrics;
    await gw.shutdown();
    const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'aigw_tokens_total') as { values: Array<{ value: number; labels: Record<string, string> }> };
    const out = metric.values.filter((v) => v.labels.direction === 'output').reduce((n, v) => n + v.value, 0);
    assert.equal(out, 2_000);
    gw = undefined as unknown as TestGateway;
  });

  it('routing.background_responses: refuse answers 400 background_not_allowed and sends nothing', async () => {
    gw = await start({ background_responses: 'refuse' });
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const n = up.received.length;
    await assert.rejects(client.responses.create({ model: 'o-deep', input: 'x', background: true }), (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === 'background_not_allowed');
    assert.equal(up.received.length, n);
  });
});
