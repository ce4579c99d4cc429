/**
 * `type: bedrock` providers with the real `openai` SDK as the client and a fake Bedrock
 * runtime that checks every SigV4 signature: Converse and ConverseStream (event-stream frames)
 * translated, usage and cost, tool calls, throttling failover, a bad signature refused.
 */
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { FAKE_AWS, FakeBedrock, startFakeBedrock } from '../helpers/fake-bedrock';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { keyless, metricValue, provider, startTestGateway, TestGateway } from '../helpers/gateway';

const MODEL_ID = 'anthropic.claude-3-5-sonnet-20240620-v1:0';

describe('bedrock provider type (openai SDK in front)', () => {
  let br: FakeBedrock;
  let oa: FakeUpstream;
  let gw: TestGateway;
  let client: OpenAI;
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY, token: process.env.AWS_SESSION_TOKEN, imds: process.env.AWS_EC2_METADATA_DISABLED };

  before(async () => {
    process.env.AWS_ACCESS_KEY_ID = FAKE_AWS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = FAKE_AWS.secretAccessKey;
    delete process.env.AWS_SESSION_TOKEN;
    // Without keys the standard chain runs (bedrock-credentials.ts); this machine's instance metadata is not one of its sources here.
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    br = await startFakeBedrock();
    oa = await startFakeUpstream('oa');
    gw = await startTestGateway({
      auth: { mode: 'none' },
      routing: { strategy: 'priority', retry_delay_ms: 5, max_retries: 1, circuit_breaker: { consecutive_failures: 50 } },
      providers: [
        {
          ...keyless(provider('br', br.url, [{ name: 'claude', upstream_name: MODEL_ID, input_per_million: 3, cached_input_per_million: 0.3, output_per_million: 15 }], { priority: 1 })),
          type: 'bedrock',
          region: FAKE_AWS.region,
        },
        provider('oa', `${oa.url}`, ['claude'], { priority: 2 }),
      ],
    });
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 });
  });
  after(async () => {
    await gw.shutdown();
    await br.close();
    await oa.close();
    for (const [k, v] of [
      ['AWS_ACCESS_KEY_ID', saved.id],
      ['AWS_SECRET_ACCESS_KEY', saved.secret],
      ['AWS_SESSION_TOKEN', saved.token],
      ['AWS_EC2_METADATA_DISABLED', saved.imds],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  beforeEach(() => br.setBehavior(() => ({ kind: 'answer' })));

  const cost = () => metricValue(gw.metricsUrl, 'aigw_cost_usd_total', { provider: 'br', model: 'claude' });

  it('Converse: a signed call to /model/{id}/converse, the request translated, the answer a chat.completion with usage and cost', async () => {
    const before = br.received.length;
    const spent = await cost();
    br.setBehavior(() => ({ kind: 'answer', cacheRead: 100 }));
    const { data, response } = await client.chat.completions
      .create({
        model: 'claude',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'hi' },
        ],
        max_tokens: 64,
        temperature: 0.2,
        stop: ['END'],
      })
      .withResponse();
    assert.equal(response.headers.get('x-gateway-provider'), 'br');
    const sent = br.received[before];
    assert.equal(sent.path, `/model/${encodeURIComponent(MODEL_ID)}/converse`);
    assert.deepEqual(sent.body, {
      messages: [{ role: 'user', content: [{ text: 'hi' }] }],
      system: [{ text: 'Be brief.' }],
      inferenceConfig: { maxTokens: 64, temperature: 0.2, stopSequences: ['END'] },
    });
    assert.equal(data.model, 'claude');
    assert.equal(data.choices[0].message.content, 'Hello from Bedrock.');
    assert.equal(data.choices[0].finish_reason, 'stop');
    assert.deepEqual(data.usage, { prompt_tokens: 112, completion_tokens: 6, total_tokens: 118, prompt_tokens_details: { cached_tokens: 100 } });
    assert.ok(Math.abs((await cost()) - spent - (12 * 3 + 100 * 0.3 + 6 * 15) / 1e6) < 1e-12);
  });

  it('ConverseStream: event-stream frames become chat.completion.chunk events with finish_reason and usage', async () => {
    const stream = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, 'Hello from Bedrock.');
    assert.equal(finish, 'stop');
    assert.deepEqual(usage, { prompt_tokens: 12, completion_tokens: 6, total_tokens: 18 });
    assert.match(br.received[br.received.length - 1].path, /\/converse-stream$/);
  });

  it('tool calls: tools to toolConfig, toolUse back as tool_calls (streamed too), the tool result in as toolResult', async () => {
    const tools: OpenAI.ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const first = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'Weather?' }], tools, tool_choice: 'required' });
    assert.deepEqual(br.received[br.received.length - 1].body.toolConfig, {
      tools: [{ toolSpec: { name: 'get_weather', inputSchema: { json: (tools[0] as OpenAI.ChatCompletionFunctionTool).function.parameters } } }],
      toolChoice: { any: {} },
    });
    const call = first.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    assert.equal(first.choices[0].finish_reason, 'tool_calls');
    assert.deepEqual([call.id, call.function.name, JSON.parse(call.function.arguments)], ['tooluse_1', 'get_weather', { city: 'Paris' }]);

    const stream = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'Weather?' }], tools, stream: true });
    let args = '';
    for await (const chunk of stream) for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) args += tc.function?.arguments ?? '';
    assert.deepEqual(JSON.parse(args), { city: 'Paris' });

    const second = await client.chat.completions.create({
      model: 'claude',
      tools,
      messages: [{ role: 'user', content: 'Weather?' }, first.choices[0].message as OpenAI.ChatCompletionMessageParam, { role: 'tool', tool_call_id: 'tooluse_1', content: '18C' }],
    });
    assert.equal(second.choices[0].message.content, 'Hello from Bedrock. [tooluse_1: 18C]');
  });

  it('fails over to the OpenAI provider on a 429 ThrottlingException and on a throttlingException frame before the first byte', async () => {
    br.setBehavior(() => ({ kind: 'error', status: 429, type: 'ThrottlingException' }));
    const { response } = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.equal(response.headers.get('x-gateway-provider'), 'oa');
    br.setBehavior(() => ({ kind: 'stream-exception', type: 'throttlingException' }));
    const s = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }], stream: true }).withResponse();
    assert.equal(s.response.headers.get('x-gateway-provider'), 'oa');
    for await (const _ of s.data) void _;
  });

  it('a 400 ValidationException comes back in the OpenAI error shape', async () => {
    br.setBehavior(() => ({ kind: 'error', status: 400, type: 'ValidationException' }));
    await assert.rejects(
      client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] }),
      (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && e.code === 'bedrock_rejected' && /ValidationException/.test(e.message),
    );
  });

  const refused = () => metricValue(gw.metricsUrl, 'aigw_upstream_attempts_total', { provider: 'br', outcome: 'provider_auth' });

  it('a call signed with other credentials is refused by the fake (the signature is really checked): a provider auth failure', async () => {
    process.env.AWS_SECRET_ACCESS_KEY = 'not-the-secret';
    const before = await refused();
    try {
      const { response } = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
      assert.equal(response.headers.get('x-gateway-provider'), 'oa', 'bedrock refused the signature (403): failed over');
      assert.equal((await refused()) - before, 1);
    } finally {
      process.env.AWS_SECRET_ACCESS_KEY = FAKE_AWS.secretAccessKey;
    }
  });

  it('without AWS credentials in the environment nothing is sent to bedrock: a provider auth failure, failed over', async () => {
    const other = await startTestGateway({
      auth: { mode: 'none' },
      providers: [{ ...keyless(provider('br', br.url, ['claude'], { priority: 1 })), type: 'bedrock', region: FAKE_AWS.region }, provider('oa', oa.url, ['claude'], { priority: 2 })],
      routing: { strategy: 'priority' },
    });
    delete process.env.AWS_ACCESS_KEY_ID;
    const sent = br.received.length;
    try {
      const res = await new OpenAI({ baseURL: `${other.url}/v1`, apiKey: 'x', maxRetries: 0 }).chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
      assert.equal(res.response.headers.get('x-gateway-provider'), 'oa');
      assert.equal(await metricValue(other.metricsUrl, 'aigw_upstream_attempts_total', { provider: 'br', outcome: 'provider_auth' }), 1);
      assert.equal(br.received.length, sent);
    } finally {
      process.env.AWS_ACCESS_KEY_ID = FAKE_AWS.accessKeyId;
      await other.shutdown();
    }
  });
});
