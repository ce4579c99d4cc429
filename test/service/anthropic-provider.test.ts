/**
 * `type: anthropic` providers, with the real `openai` SDK as the client and a fake Anthropic
 * Messages API upstream: requests translated, answers and streams translated back with
 * finish_reason and usage (cached input priced apart), tool calls round-tripping, Anthropic
 * errors in the OpenAI shape, and failover from a 529 to an OpenAI provider before the first byte.
 */
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { FakeAnthropic, startFakeAnthropic } from '../helpers/fake-anthropic';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { metricValue, provider, startTestGateway, TestGateway } from '../helpers/gateway';

const PRICES = { input_per_million: 3, cached_input_per_million: 0.3, output_per_million: 15 };

describe('anthropic provider type (openai SDK in front)', () => {
  let ant: FakeAnthropic;
  let oa: FakeUpstream;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    ant = await startFakeAnthropic();
    oa = await startFakeUpstream('oa');
    gw = await startTestGateway({
      auth: { mode: 'none' },
      // The failover cases fail anthropic often in a row: its circuit must stay closed for the cases after them.
      routing: { strategy: 'priority', retry_delay_ms: 5, max_retries: 1, circuit_breaker: { consecutive_failures: 50 } },
      providers: [
        { ...provider('claude', ant.url, [{ name: 'claude', upstream_name: 'claude-sonnet-4-5', ...PRICES }], { priority: 1, default_max_tokens: 1234 }), type: 'anthropic', api_key: ant.apiKey },
        provider('oa', oa.url, ['claude'], { priority: 2 }),
      ],
    });
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 });
  });
  after(async () => {
    await gw.shutdown();
    await ant.close();
    await oa.close();
  });
  beforeEach(() => ant.setBehavior(() => ({ kind: 'answer' })));

  const cost = () => metricValue(gw.metricsUrl, 'aigw_cost_usd_total', { provider: 'claude', model: 'claude' });

  it('translates a chat request: system on top, max_tokens from config, stop, temperature, top_p, Anthropic headers', async () => {
    const before = ant.received.length;
    const { data, response } = await client.chat.completions
      .create({
        model: 'claude',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'hi' },
        ],
        stop: 'END',
        temperature: 0.5,
        top_p: 0.9,
      })
      .withResponse();
    assert.equal(response.headers.get('x-gateway-provider'), 'claude');
    const sent = ant.received[before];
    assert.equal(sent.headers['x-api-key'], ant.apiKey);
    assert.equal(sent.headers['anthropic-version'], '2023-06-01');
    assert.equal(sent.headers.authorization, undefined);
    assert.deepEqual(sent.body, {
      model: 'claude-sonnet-4-5',
      max_tokens: 1234,
      system: 'Be brief.',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
      stop_sequences: ['END'],
      temperature: 0.5,
      top_p: 0.9,
    });
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.model, 'claude', 'the public model name, not the upstream one');
    assert.equal(data.choices[0].message.content, 'Hello from Claude.');
    assert.equal(data.choices[0].finish_reason, 'stop');
  });

  it('maps max_tokens to finish_reason length, and the client max_tokens wins over the default', async () => {
    ant.setBehavior(() => ({ kind: 'answer', stopReason: 'max_tokens' }));
    const before = ant.received.length;
    const r = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 });
    assert.equal(ant.received[before].body.max_tokens, 5);
    assert.equal(r.choices[0].finish_reason, 'length');
  });

  it('reports usage with cache reads as cached tokens, priced at the cached-input price', async () => {
    ant.setBehavior(() => ({ kind: 'answer', cacheRead: 100 }));
    const spent = await cost();
    const r = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] });
    assert.deepEqual(r.usage, { prompt_tokens: 121, completion_tokens: 7, total_tokens: 128, prompt_tokens_details: { cached_tokens: 100 } });
    const expected = (21 * 3 + 100 * 0.3 + 7 * 15) / 1e6;
    assert.ok(Math.abs((await cost()) - spent - expected) < 1e-12, `cost ${(await cost()) - spent} != ${expected}`);
  });

  it('streams as chat.completion.chunk events with finish_reason and usage, and accounts the cost', async () => {
    ant.setBehavior(() => ({ kind: 'answer', cacheRead: 100 }));
    const spent = await cost();
    const stream = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      assert.equal(chunk.model, 'claude');
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, 'Hello from Claude.');
    assert.equal(finish, 'stop');
    assert.deepEqual(usage, { prompt_tokens: 121, completion_tokens: 7, total_tokens: 128, prompt_tokens_details: { cached_tokens: 100 } });
    assert.equal(ant.received[ant.received.length - 1].body.stream, true);
    const expected = (21 * 3 + 100 * 0.3 + 7 * 15) / 1e6;
    assert.ok(Math.abs((await cost()) - spent - expected) < 1e-12);
  });

  it('hides the usage chunk from a stream that did not ask for it', async () => {
    const stream = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }], stream: true });
    for await (const chunk of stream) assert.equal(chunk.usage ?? undefined, undefined);
  });

  const tools: OpenAI.ChatCompletionTool[] = [
    { type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
  ];

  it('round-trips tool calls: tools and tool_choice out, tool_use back as tool_calls, tool results in', async () => {
    const before = ant.received.length;
    const first = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools, tool_choice: 'required' });
    const sent = ant.received[before].body;
    assert.deepEqual(sent.tools, [{ name: 'get_weather', description: 'Weather in a city', input_schema: (tools[0] as OpenAI.ChatCompletionFunctionTool).function.parameters }]);
    assert.deepEqual(sent.tool_choice, { type: 'any' });
    assert.equal(first.choices[0].finish_reason, 'tool_calls');
    const call = first.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    assert.equal(call.id, 'toolu_01A');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris', unit: 'c' });

    const second = await client.chat.completions.create({
      model: 'claude',
      tools,
      messages: [{ role: 'user', content: 'Weather in Paris?' }, first.choices[0].message as OpenAI.ChatCompletionMessageParam, { role: 'tool', tool_call_id: call.id, content: '18C, sunny' }],
    });
    const msgs = ant.received[before + 1].body.messages;
    assert.deepEqual(msgs[1], { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01A', name: 'get_weather', input: { city: 'Paris', unit: 'c' } }] });
    assert.deepEqual(msgs[2], { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01A', content: '18C, sunny' }] });
    assert.equal(second.choices[0].message.content, 'Hello from Claude. [toolu_01A: 18C, sunny]');
  });

  it('streams tool calls as tool_calls deltas (id and name first, then the arguments in pieces)', async () => {
    const stream = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'Weather?' }], tools, stream: true });
    let args = '';
    let id: string | undefined;
    let name: string | undefined;
    let finish: string | null = null;
    for await (const chunk of stream) {
      for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) {
        assert.equal(tc.index, 0);
        id ??= tc.id;
        name ??= tc.function?.name;
        args += tc.function?.arguments ?? '';
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(id, 'toolu_01A');
    assert.equal(name, 'get_weather');
    assert.deepEqual(JSON.parse(args), { city: 'Paris', unit: 'c' });
    assert.equal(finish, 'tool_calls');
  });

  it('translates images (data URL to a base64 source) and response_format json into the system prompt', async () => {
    const before = ant.received.length;
    await client.chat.completions.create({
      model: 'claude',
      response_format: { type: 'json_object' },
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'What is this?' },
            { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
          ],
        },
      ],
    });
    const sent = ant.received[before].body;
    assert.deepEqual(sent.messages[0].content[1], { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } });
    assert.match(sent.system, /JSON object/);
  });

  it('relays an Anthropic 400 in the OpenAI error shape, and refuses what it cannot translate with a 400', async () => {
    ant.setBehavior(() => ({ kind: 'error', status: 400, type: 'invalid_request_error', message: 'messages: text content blocks must be non-empty' }));
    await assert.rejects(client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] }), (err: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(err.status, 400);
      assert.equal(err.type, 'invalid_request_error');
      assert.equal(err.code, 'invalid_request_error');
      assert.match(err.message, /text content blocks must be non-empty/);
      return true;
    });
    await assert.rejects(client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }], n: 2 }), (err: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(err.status, 400);
      assert.equal(err.code, 'unsupported_by_provider');
      assert.equal(err.param, 'n');
      return true;
    });
  });

  it('fails over from a 529 overloaded_error to the OpenAI provider (after a retry), before the first byte', async () => {
    ant.setBehavior(() => ({ kind: 'error', status: 529, type: 'overloaded_error', message: 'Overloaded' }));
    const before = ant.received.length;
    const { data, response } = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.equal(response.headers.get('x-gateway-provider'), 'oa');
    assert.equal(response.headers.get('x-gateway-attempts'), '3');
    assert.equal(ant.received.length - before, 2, 'retried once on anthropic');
    assert.equal(data.choices[0].message.content, 'Hello from oa');

    const stream = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }], stream: true }).withResponse();
    assert.equal(stream.response.headers.get('x-gateway-provider'), 'oa');
    let text = '';
    for await (const chunk of stream.data) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, 'Hello from the fake upstream.');
  });

  it('fails over on an overloaded error event before the first byte; after it, the stream is continued by the next provider', async () => {
    ant.setBehavior(() => ({ kind: 'stream-error', type: 'overloaded_error', after: 0 }));
    const { response } = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }], stream: true }).withResponse();
    assert.equal(response.headers.get('x-gateway-provider'), 'oa');

    ant.setBehavior(() => ({ kind: 'stream-error', type: 'overloaded_error', after: 2 }));
    const cut = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }], stream: true }).withResponse();
    assert.equal(cut.response.headers.get('x-gateway-provider'), 'claude');
    let text = '';
    for await (const chunk of cut.data) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, 'Hello fromHello from the fake upstream.', "Claude's first words, then the OpenAI provider's continuation");
  });

  it("an Anthropic 401 marks the provider failing and fails over (the gateway key problem is not the client's)", async () => {
    ant.setBehavior(() => ({ kind: 'error', status: 401, type: 'authentication_error', message: 'invalid x-api-key' }));
    const { response } = await client.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.equal(response.headers.get('x-gateway-provider'), 'oa');
  });
});
