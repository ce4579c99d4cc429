/**
 * The demo does what it says, on its own config (config/demo.yaml) and its own simulated
 * providers (scripts/demo-setup.ts): "premium" answers in about 300 ms, "budget" in about 40 ms.
 * Budget's random failures are switched off here, so only the routing is under test.
 */
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { parseConfig } from '../../service/config/schema';
import { RunningGateway, startGateway } from '../../service/server';
import { DemoSetup, startDemoProviders } from '../../scripts/demo-setup';

describe('demo (config/demo.yaml with the demo providers)', () => {
  let demo: DemoSetup;
  let gw: RunningGateway;
  let client: OpenAI;

  before(async () => {
    demo = await startDemoProviders(() => 0.99);
    gw = await startGateway(parseConfig({ ...demo.config, server: { ...demo.config.server, host: '127.0.0.1', port: 0, metrics_port: 0, log_level: 'silent' } }));
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: demo.key, maxRetries: 0 });
  });
  after(async () => {
    await gw.shutdown();
    await demo.premium.close();
    await demo.budget.close();
  });

  it('"fast" (latency-optimal, premium listed first) measures budget and sends it most requests', async () => {
    const served: string[] = [];
    for (let i = 0; i < 8; i++) {
      const { response } = await client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: `hi ${i}` }] }).withResponse();
      served.push(response.headers.get('x-gateway-provider')!);
    }
    assert.ok(served.slice(0, 2).includes('budget'), `budget is tried within the first two requests: ${served.join(',')}`);
    // 5 % exploration may send an odd request to premium; the rest go to the faster budget.
    assert.ok(served.filter((p) => p === 'budget').length >= 5, `served by: ${served.join(',')}`);
  });

  it('"gpt-4o-mini" (cost-optimal) goes to budget', async () => {
    const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.equal(response.headers.get('x-gateway-provider'), 'budget');
  });
});
