/**
 * Errors that a bigger model fixes, errors that no model fixes, and the model that answered:
 * a context_length_exceeded answer fails over only to a target with a larger declared
 * context_window (never the same request to the same model again); a content-policy refusal
 * is not retried and its reason reaches the client; the answer's `model` field names the public
 * model that served (an alias answered by its fallback says the fallback's name, never an
 * upstream name). The real `openai` SDK is the client.
 */
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Behavior, FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { provider, startTestGateway, TestGateway } from '../helpers/gateway';

const TOO_LONG = {
  error: {
    message: "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
    type: 'invalid_request_error',
    param: 'messages',
    code: 'context_length_exceeded',
  },
};
const POLICY = { error: { message: 'Your request was rejected as a result of our safety system: violence.', type: 'invalid_request_error', param: null, code: 'content_policy_violation' } };

describe('failover by model: context length, content policy, the model that answered', () => {
  let small: FakeUpstream;
  let twin: FakeUpstream;
  let big: FakeUpstream;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    small = await startFakeUpstream('small');
    twin = await startFakeUpstream('twin');
    big = await startFakeUpstream('big');
    gw = await startTestGateway({
      auth: { mode: 'none' },
      routing: { strategy: 'priority', max_retries: 2, retry_delay_ms: 5 },
      providers: [
        provider('small', small.url, [{ name: 'mini', upstream_name: 'mini-2026-01', context_window: 8_192, input_per_million: 1, output_per_million: 2 }], { priority: 1 }),
        provider('twin', twin.url, [{ name: 'mini', upstream_name: 'mini-2026-01', context_window: 8_192, input_per_million: 1, output_per_million: 2 }], { priority: 2 }),
        provider('big', big.url, [{ name: 'maxi', upstream_name: 'maxi-deploy-east', context_window: 200_000, input_per_million: 3, output_per_million: 6 }], { priority: 3 }),
      ],
      models: {
        smart: {
          strategy: 'priority',
          targets: [
            { provider: 'small', model: 'mini' },
            { provider: 'twin', model: 'mini' },
            { provider: 'big', model: 'maxi' },
          ],
        },
      },
    });
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await gw.shutdown();
    await Promise.all([small.close(), twin.close(), big.close()]);
  });
  const all = (b: (stream: boolean) => Behavior) => {
    for (const up of [small, twin, big]) up.setBehavior((req) => b(req.body.stream === true));
  };
  const counts = () => [small.received.length, twin.received.length, big.received.length];
  beforeEach(() => all((stream) => (stream ? { kind: 'stream' } : { kind: 'ok' })));

  it('context length exceeded: skips the same-sized twin, fails over to the larger window, and names the model that answered', async () => {
    small.setBehavior(() => ({ kind: 'status', status: 400, body: TOO_LONG }));
    const [s0, t0, b0] = counts();
    const { data, response } = await client.chat.completions.create({ model: 'smart', messages: [{ role: 'user', content: 'a long story' }] }).withResponse();
    assert.equal(response.headers.get('x-gateway-provider'), 'big');
    assert.deepEqual(counts(), [s0 + 1, t0, b0 + 1], 'one try at the small model, none at its same-window twin, no retry');
    assert.equal(data.model, 'maxi', 'the public name of the model that answered, not the alias and not the deployment');
  });

  it('context length exceeded with no larger window: the provider 400 reaches the client, never the same request twice', async () => {
    small.setBehavior(() => ({ kind: 'status', status: 400, body: TOO_LONG }));
    const [s0, t0] = counts();
    await assert.rejects(
      client.chat.completions.create({ model: 'mini', messages: [{ role: 'user', content: 'a long story' }] }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded' && /maximum context length/.test(e.message),
    );
    assert.deepEqual(counts().slice(0, 2), [s0 + 1, t0]);
  });

  it('a content-policy refusal is not retried or failed over, and its reason reaches the client', async () => {
    small.setBehavior(() => ({ kind: 'status', status: 400, body: POLICY }));
    const before = counts();
    await assert.rejects(
      client.chat.completions.create({ model: 'smart', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === 'content_policy_violation' && /safety system: violence/.test(e.message),
    );
    assert.deepEqual(counts(), [before[0] + 1, before[1], before[2]]);
  });

  it('a streamed alias answered by its fallback names the fallback in every chunk', async () => {
    small.setBehavior(() => ({ kind: 'status', status: 503 }));
    twin.setBehavior(() => ({ kind: 'status', status: 503 }));
    const stream = await client.chat.completions.create({ model: 'smart', stream: true, messages: [{ role: 'user', content: 'x' }] });
    const models = new Set<string>();
    for await (const chunk of stream) models.add(chunk.model);
    assert.deepEqual([...models], ['maxi']);
  });
});
