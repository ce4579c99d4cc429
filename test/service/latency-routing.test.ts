/**
 * latency-optimal over real HTTP: providers whose latency changes. A provider that got faster
 * wins traffic back once re-probed (routing.exploration.reprobe_after_ms), with no exploration
 * share, so only the re-probe is under test.
 */
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { provider, startTestGateway, TestGateway } from '../helpers/gateway';

describe('latency-optimal: re-probing a quiet provider', () => {
  let a: FakeUpstream;
  let b: FakeUpstream;
  let gw: TestGateway;
  let client: OpenAI;
  const latency = { a: 10, b: 200 };

  before(async () => {
    a = await startFakeUpstream('a', () => ({ kind: 'ok', delayMs: latency.a }));
    b = await startFakeUpstream('b', () => ({ kind: 'ok', delayMs: latency.b }));
    gw = await startTestGateway({
      auth: { mode: 'none' },
      providers: [provider('a', a.url, ['m']), provider('b', b.url, ['m'])],
      routing: { strategy: 'latency-optimal', ewma_alpha: 1, exploration: { share: 0, reprobe_after_ms: 100 } },
    });
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused-in-auth-none', maxRetries: 0 });
  });
  after(async () => {
    await gw.shutdown();
    await a.close();
    await b.close();
  });

  const send = async () => (await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }).withResponse()).response.headers.get('x-gateway-provider');

  it('both are measured first; then the faster one serves; after they swap speeds, the one that got faster wins back', async () => {
    assert.deepEqual([await send(), await send()], ['a', 'b'], 'never-tried providers go first, in config order');
    assert.equal(await send(), 'a');
    latency.a = 120; // a got slower, but stays under b's last measurement (200 ms)
    latency.b = 10; // b got faster, unseen until it is probed again
    const served: string[] = [];
    for (let i = 0; i < 20 && served.slice(-3).join() !== 'b,b,b'; i++) served.push((await send())!);
    assert.deepEqual(served.slice(-3), ['b', 'b', 'b'], `served after the swap: ${served.join(',')}`);
  });
});

describe('latency-optimal: probing a never-tried provider under concurrent load', () => {
  let a: FakeUpstream;
  let b: FakeUpstream;
  let gw: TestGateway;

  before(async () => {
    a = await startFakeUpstream('a', () => ({ kind: 'ok', delayMs: 10 }));
    b = await startFakeUpstream('b', () => ({ kind: 'ok', delayMs: 300 }));
    gw = await startTestGateway({
      auth: { mode: 'none' },
      providers: [provider('a', a.url, ['m']), provider('b', b.url, ['m'])],
      routing: { strategy: 'latency-optimal', exploration: { share: 0, reprobe_after_ms: 60_000 } },
    });
  });
  after(async () => {
    await gw.shutdown();
    await a.close();
    await b.close();
  });

  it('one request probes it; the concurrent others go to the measured provider meanwhile', async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused-in-auth-none', maxRetries: 0 });
    const send = async () => (await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }).withResponse()).response.headers.get('x-gateway-provider');
    assert.equal(await send(), 'a'); // a is measured; b is still never tried
    const served = await Promise.all(Array.from({ length: 10 }, send));
    assert.equal(served.filter((p) => p === 'b').length, 1, `served: ${served.join(',')}`);
  });
});
