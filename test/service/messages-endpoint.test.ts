/**
 * POST /v1/messages with the real `@anthropic-ai/sdk` as the client: served natively by an
 * `anthropic` provider (the body passed on, the model name mapped) and translated to an
 * OpenAI provider (request, answer and stream in Anthropic's shape), keys as x-api-key or
 * Bearer, accounted like chat, tool calls round-tripping both ways.
 */
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { hashKey } from '../../service/tenancy/keys';
import { FakeAnthropic, startFakeAnthropic } from '../helpers/fake-anthropic';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { metricValue, provider, startTestGateway, TestGateway } from '../helpers/gateway';

const KEY = 'sk-gw-messages-client';
const PRICES = { input_per_million: 3, cached_input_per_million: 0.3, output_per_million: 15 };
const tools: Anthropic.Tool[] = [{ name: 'get_weather', description: 'Weather in a city', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];

describe('POST /v1/messages (@anthropic-ai/sdk in front)', () => {
  let ant: FakeAnthropic;
  let oa: FakeUpstream;
  let gw: TestGateway;
  let client: Anthropic;

  before(async () => {
    ant = await startFakeAnthropic();
    oa = await startFakeUpstream('oa');
    gw = await startTestGateway({
      auth: { keys: [{ hash: hashKey(KEY), name: 'app', team: 'web', project: 'site' }] },
      providers: [
        { ...provider('ant', ant.url, [{ name: 'claude', upstream_name: 'claude-sonnet-4-5', ...PRICES }]), type: 'anthropic', api_key: ant.apiKey },
        provider('oa', oa.url, [{ name: 'gpt', upstream_name: 'gpt-4o', ...PRICES }]),
      ],
    });
    client = new Anthropic({ baseURL: gw.url, apiKey: KEY, maxRetries: 0 });
  });
  after(async () => {
    await gw.shutdown();
    await ant.close();
    await oa.close();
  });
  beforeEach(() => {
    ant.setBehavior(() => ({ kind: 'answer' }));
    oa.setBehavior((req) => (req.body.stream ? { kind: 'stream' } : { kind: 'ok' }));
  });

  const cost = (p: string) => metricValue(gw.metricsUrl, 'aigw_cost_usd_total', { provider: p, team: 'web' });

  it('native: the body goes to the anthropic provider as sent (model mapped, the provider key), the answer comes back as it is', async () => {
    const before = ant.received.length;
    const spent = await cost('ant');
    const params = { model: 'claude', max_tokens: 100, system: 'Be brief.', messages: [{ role: 'user' as const, content: 'hi' }], top_k: 5 };
    const { data, response } = await client.messages.create({ ...params, metadata: { user_id: 'u1' } }).withResponse();
    assert.equal(response.headers.get('x-gateway-provider'), 'ant');
    const sent = ant.received[before];
    assert.deepEqual(sent.body, { ...params, metadata: { user_id: 'u1' }, model: 'claude-sonnet-4-5' });
    assert.equal(sent.headers['x-api-key'], ant.apiKey, 'the provider key, never the client key');
    assert.equal(data.type, 'message');
    assert.equal(data.model, 'claude');
    assert.deepEqual(data.content, [{ type: 'text', text: 'Hello from Claude.' }]);
    assert.equal(data.stop_reason, 'end_turn');
    assert.equal(data.usage.input_tokens, 21);
    assert.equal(data.usage.output_tokens, 7);
    assert.ok(Math.abs((await cost('ant')) - spent - (21 * 3 + 7 * 15) / 1e6) < 1e-12);
  });

  it('native stream: Anthropic events relayed, usage from message_start and message_delta accounted', async () => {
    ant.setBehavior(() => ({ kind: 'answer', cacheRead: 100 }));
    const spent = await cost('ant');
    const stream = client.messages.stream({ model: 'claude', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
    const types: string[] = [];
    stream.on('streamEvent', (e) => types.push(e.type));
    const final = await stream.finalMessage();
    assert.equal(final.content[0].type === 'text' && final.content[0].text, 'Hello from Claude.');
    assert.equal(final.model, 'claude');
    assert.equal(final.usage.output_tokens, 7);
    assert.equal(final.usage.cache_read_input_tokens, 100);
    assert.deepEqual([...new Set(types)], ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    assert.ok(Math.abs((await cost('ant')) - spent - (21 * 3 + 100 * 0.3 + 7 * 15) / 1e6) < 1e-12);
  });

  it('translated: an OpenAI provider gets a chat request (Bearer key accepted), the answer is an Anthropic message', async () => {
    const bearer = new Anthropic({ baseURL: gw.url, apiKey: null, authToken: KEY, maxRetries: 0 });
    const before = oa.received.length;
    const spent = await cost('oa');
    const { data, response } = await bearer.messages.create({ model: 'gpt', max_tokens: 50, system: 'Be brief.', stop_sequences: ['END'], messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.equal(response.headers.get('x-gateway-provider'), 'oa');
    const sent = oa.received[before];
    assert.equal(sent.path, '/v1/chat/completions');
    assert.deepEqual(sent.body, {
      model: 'gpt-4o',
      max_tokens: 50,
      stop: ['END'],
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'hi' },
      ],
    });
    assert.equal(data.model, 'gpt');
    assert.deepEqual(data.content, [{ type: 'text', text: 'Hello from oa' }]);
    assert.equal(data.stop_reason, 'end_turn');
    assert.equal(data.usage.input_tokens, 10);
    assert.equal(data.usage.output_tokens, 5);
    assert.ok(Math.abs((await cost('oa')) - spent - (10 * 3 + 5 * 15) / 1e6) < 1e-12);
  });

  it('translated stream: OpenAI chunks come back as Anthropic events, with usage', async () => {
    const stream = client.messages.stream({ model: 'gpt', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
    let text = '';
    stream.on('text', (t) => (text += t));
    const final = await stream.finalMessage();
    assert.equal(text, 'Hello from the fake upstream.');
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.usage.output_tokens, 6);
    assert.equal(oa.received[oa.received.length - 1].body.stream_options && (oa.received[oa.received.length - 1].body.stream_options as { include_usage: boolean }).include_usage, true);
  });

  it('tool calls round-trip through an OpenAI provider: tool_use out of tool_calls, tool_result back in as a tool message, streamed too', async () => {
    oa.setBehavior(() => ({ kind: 'tool-call', args: '{"city":"Paris"}' }));
    const first = await client.messages.create({ model: 'gpt', max_tokens: 50, tools, tool_choice: { type: 'any' }, messages: [{ role: 'user', content: 'Weather?' }] });
    assert.equal(first.stop_reason, 'tool_use');
    assert.deepEqual(first.content, [{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } }]);
    const sentTools = oa.received[oa.received.length - 1].body;
    assert.deepEqual(sentTools.tools, [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: tools[0].input_schema } }]);
    assert.equal(sentTools.tool_choice, 'required');

    const streamed = await client.messages.stream({ model: 'gpt', max_tokens: 50, tools, messages: [{ role: 'user', content: 'Weather?' }] }).finalMessage();
    assert.deepEqual(streamed.content, [{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } }]);
    assert.equal(streamed.stop_reason, 'tool_use');

    oa.setBehavior(() => ({ kind: 'ok' }));
    await client.messages.create({
      model: 'gpt',
      max_tokens: 50,
      tools,
      messages: [
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: '18C' }] },
      ],
    });
    const msgs = oa.received[oa.received.length - 1].body.messages as unknown[];
    assert.deepEqual(msgs.slice(1), [
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '18C' },
    ]);
  });

  it('tool calls round-trip natively through an anthropic provider', async () => {
    const first = await client.messages.create({ model: 'claude', max_tokens: 50, tools, messages: [{ role: 'user', content: 'Weather?' }] });
    assert.equal(first.stop_reason, 'tool_use');
    const second = await client.messages.create({
      model: 'claude',
      max_tokens: 50,
      tools,
      messages: [
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01A', content: '18C' }] },
      ],
    });
    assert.equal(second.content[0].type === 'text' && second.content[0].text, 'Hello from Claude. [toolu_01A: 18C]');
  });

  it('refuses a request without a key, with an unknown key, and without max_tokens', async () => {
    const anon = new Anthropic({ baseURL: gw.url, apiKey: 'sk-wrong', maxRetries: 0 });
    await assert.rejects(anon.messages.create({ model: 'claude', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }), (e: InstanceType<typeof Anthropic.APIError>) => e.status === 401);
    const res = await fetch(`${gw.url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 401);
    await assert.rejects(
      client.messages.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] } as never),
      (e: InstanceType<typeof Anthropic.APIError>) => e.status === 400 && /max_tokens/.test(e.message),
    );
  });

  it("errors come back in Anthropic's shape, so the SDK raises its typed errors with the gateway's message", async () => {
    const anon = new Anthropic({ baseURL: gw.url, apiKey: 'sk-wrong', maxRetries: 0 });
    await assert.rejects(
      anon.messages.create({ model: 'claude', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
      (e: unknown) => e instanceof Anthropic.AuthenticationError && !/^\{/.test(e.message) && /key/i.test(e.message),
    );
    await assert.rejects(
      client.messages.create({ model: 'nope', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
      (e: unknown) => e instanceof Anthropic.NotFoundError && /nope/.test(e.message),
    );
    const res = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': KEY },
      body: JSON.stringify({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { type: string; error: { type: string; message: string }; request_id: string };
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, 'invalid_request_error');
    assert.match(body.error.message, /max_tokens/);
    assert.equal(body.request_id, res.headers.get('x-request-id'));
    ant.setBehavior(() => ({ kind: 'error', status: 529, type: 'overloaded_error' }));
    oa.setBehavior(() => ({ kind: 'status', status: 503 }));
    await assert.rejects(
      client.messages.create({ model: 'claude', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
      (e: unknown) => e instanceof Anthropic.APIError && (e.error as { type: string }).type === 'error',
    );
  });

  it('translated answers carry msg_ ids, in the message and in message_start', async () => {
    const msg = await client.messages.create({ model: 'gpt', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
    assert.match(msg.id, /^msg_/);
    const stream = client.messages.stream({ model: 'gpt', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
    assert.match((await stream.finalMessage()).id, /^msg_/);
  });

  it('POST /v1/messages/count_tokens counts the input tokens (an estimate, said in a header), authenticated, the model checked', async () => {
    const before = ant.received.length + oa.received.length;
    const { input_tokens } = await client.messages.countTokens({ model: 'claude', system: 'Be brief.', messages: [{ role: 'user', content: 'How many tokens is this sentence?' }] });
    assert.ok(input_tokens > 5 && input_tokens < 40, `${input_tokens}`);
    const longer = await client.messages.countTokens({ model: 'claude', messages: [{ role: 'user', content: 'How many tokens is this sentence? '.repeat(20) }] });
    assert.ok(longer.input_tokens > input_tokens * 5);
    assert.equal(ant.received.length + oa.received.length, before, 'no provider was called');
    const anon = new Anthropic({ baseURL: gw.url, apiKey: 'sk-wrong', maxRetries: 0 });
    await assert.rejects(anon.messages.countTokens({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] }), Anthropic.AuthenticationError);
    await assert.rejects(client.messages.countTokens({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] }), Anthropic.NotFoundError);
    const res = await fetch(`${gw.url}/v1/messages/count_tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': KEY },
      body: JSON.stringify({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.headers.get('x-gateway-estimated'), 'true');
  });
});
