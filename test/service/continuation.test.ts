/**
 * Failover that finishes the answer: a stream cut, stalled or broken after content reached the
 * client is continued by the next provider of the plan and spliced into the same client stream
 * (chat, responses, /v1/messages), so the client gets one complete answer with one finish and
 * one usage block. Prefill or instruction per model, a fallback rejecting a prefill asked again
 * with an instruction, tool-call streams and n > 1 not continued, both attempts billed, and the
 * continuation marked (SSE comment, metric, log line). Official SDKs are the clients.
 */
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { hashKey } from '../../service/tenancy/keys';
import { AnthropicReceived, FakeAnthropic, startFakeAnthropic } from '../helpers/fake-anthropic';
import { Behavior, DEFAULT_CHUNKS, FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { metricValue, provider, startTestGateway, TestGateway } from '../helpers/gateway';
import { listenLoopback } from '../helpers/loopback';

const KEY = 'sk-gw-continuation-client';
const FULL_B = DEFAULT_CHUNKS.join('');
const CHUNKS = ['The ', 'quick ', 'brown ', 'fox ', 'jumps ', 'over.'];
const lastMessage = (body: Record<string, unknown>, field = 'messages') => {
  const list = body[field] as Array<{ role: string; content: unknown }>;
  return list[list.length - 1];
};

describe('mid-stream continuation on another provider', function () {
  this.timeout(20_000);
  let a: FakeUpstream;
  let b: FakeUpstream;
  let ant: FakeAnthropic;
  let gw: TestGateway;
  let openai: OpenAI;
  let anthropic: Anthropic;

  before(async () => {
    a = await startFakeUpstream('a');
    b = await startFakeUpstream('b');
    ant = await startFakeAnthropic();
    gw = await startTestGateway({
      auth: { keys: [{ hash: hashKey(KEY), name: 'app', team: 'web', project: 'site' }] },
      routing: { strategy: 'priority', max_retries: 0, deadlines: { between_events_ms: 300 } },
      providers: [
        provider('a', a.url, ['m', 'solo', 'both'], { priority: 1 }),
        provider('b', b.url, ['m', 'both'], { priority: 2 }),
        { ...provider('ant', ant.url, [{ name: 'both', upstream_name: 'claude-x', input_per_million: 1, output_per_million: 2 }], { priority: 3 }), type: 'anthropic', api_key: ant.apiKey },
      ],
    });
    openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: KEY, maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: gw.url, apiKey: KEY, maxRetries: 0 });
  });
  after(async () => {
    await gw.shutdown();
    await Promise.all([a.close(), b.close(), ant.close()]);
  });
  const cutA = (extra: Partial<Extract<Behavior, { kind: 'stream' }>> = {}) => a.setBehavior(() => ({ kind: 'stream', chunks: CHUNKS, cutAfter: 3, delayMs: 20, ...extra }));
  beforeEach(() => {
    a.setBehavior((req) => (req.body.stream ? { kind: 'stream' } : { kind: 'ok' }));
    b.setBehavior((req) => (req.body.stream ? { kind: 'stream' } : { kind: 'ok' }));
    ant.setBehavior(() => ({ kind: 'answer' }));
  });
  const continued = (p: string) => metricValue(gw.metricsUrl, 'aigw_stream_continuations_total', { provider: p, outcome: 'continued' });

  it('chat: cut after 3 of 6 chunks, continued by the next provider with an instruction; one finish_reason, one usage chunk, both attempts billed', async () => {
    cutA();
    const before = { b: b.received.length, continued: await continued('b') };
    const stream = await openai.chat.completions.create({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Tell me about the fox.' }] });
    let text = '';
    const finishes: string[] = [];
    let usageChunks = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.choices[0]?.finish_reason) finishes.push(chunk.choices[0].finish_reason);
      if (chunk.usage) usageChunks++;
    }
    assert.equal(text, `The quick brown ${FULL_B}`);
    assert.deepEqual(finishes, ['stop']);
    assert.equal(usageChunks, 1);
    const sent = b.received[before.b].body;
    const last = lastMessage(sent) as { role: string; content: string };
    assert.equal(last.role, 'user');
    assert.match(last.content, /The quick brown/);
    assert.match(last.content, /Continue exactly where it stops/);
    assert.equal((await continued('b')) - before.continued, 1);
    assert.ok((await metricValue(gw.metricsUrl, 'aigw_cost_usd_total', { provider: 'a', estimated: 'true' })) > 0, 'the cut attempt is billed on its estimate');
    assert.ok((await metricValue(gw.metricsUrl, 'aigw_cost_usd_total', { provider: 'b', estimated: 'false' })) > 0, 'the continuation by its usage');
    const line = gw.logs
      .map((l) => JSON.parse(l) as { continued_by?: string; stream_outcome?: string })
      .reverse()
      .find((l) => l.continued_by);
    assert.equal(line?.continued_by, 'b');
  });

  it('chat: a stall (no event within between_events_ms) is continued too, and the stream says so in an SSE comment', async () => {
    a.setBehavior(() => ({ kind: 'stream', chunks: ['Half ', 'of it', 'never'], delayMs: 3_000 }));
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'x' }] }),
    });
    const raw = await res.text();
    assert.match(raw, /^: gateway: stream continued by provider b after a broke off$/m);
    assert.match(raw, /data: \[DONE\]/);
    assert.doesNotMatch(raw, /"error"/);
  });

  it('responses: the continuation goes on in the same response, item and sequence; the final event carries the whole text', async () => {
    a.setBehavior(() => ({ kind: 'stream', chunks: CHUNKS, cutAfter: 7, delayMs: 20 }));
    const stream = openai.responses.stream({ model: 'm', input: 'Tell me about the fox.' });
    const seqs: number[] = [];
    let createdId = '';
    for await (const event of stream) {
      seqs.push(event.sequence_number);
      if (event.type === 'response.created') createdId = event.response.id;
    }
    const final = await stream.finalResponse();
    assert.equal(final.output_text, `The quick brown ${FULL_B}`);
    assert.equal(final.id, createdId, 'the response the client saw created');
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => i),
      'sequence numbers go on without a gap or a repeat',
    );
    const sent = b.received[b.received.length - 1].body;
    assert.equal((lastMessage(sent, 'input') as { role: string }).role, 'user');
  });

  it('/v1/messages: an OpenAI-type primary cut, a native Anthropic fallback continues by prefill; one message, one text block', async () => {
    a.setBehavior(() => ({ kind: 'stream', chunks: CHUNKS, cutAfter: 3, delayMs: 20 }));
    b.setBehavior(() => ({ kind: 'status', status: 503 }));
    const n = ant.received.length;
    const stream = anthropic.messages.stream({ model: 'both', max_tokens: 100, messages: [{ role: 'user', content: 'Tell me about the fox.' }] });
    let starts = 0;
    stream.on('streamEvent', (e) => {
      if (e.type === 'message_start') starts++;
    });
    const message = await stream.finalMessage();
    assert.equal(starts, 1);
    assert.equal(message.content.length, 1);
    assert.equal((message.content[0] as { text: string }).text, 'The quick brown Hello from Claude.');
    assert.equal(message.stop_reason, 'end_turn');
    const last = lastMessage(ant.received[n].body) as { role: string; content: string };
    assert.deepEqual(last, { role: 'assistant', content: 'The quick brown' }, 'the partial text as a prefill, trailing space trimmed');
  });

  it('a fallback that rejects the prefill is asked again with an instruction, never surfaced as the error', async () => {
    a.setBehavior(() => ({ kind: 'stream', chunks: CHUNKS, cutAfter: 3, delayMs: 20 }));
    b.setBehavior(() => ({ kind: 'status', status: 503 }));
    ant.setBehavior((req: AnthropicReceived) =>
      lastMessage(req.body).role === 'assistant'
        ? { kind: 'error', status: 400, type: 'invalid_request_error', message: 'This model does not support assistant message prefill.' }
        : { kind: 'answer' },
    );
    const n = ant.received.length;
    const message = await anthropic.messages.stream({ model: 'both', max_tokens: 100, messages: [{ role: 'user', content: 'x' }] }).finalMessage();
    assert.equal((message.content[0] as { text: string }).text, 'The quick brown Hello from Claude.');
    assert.equal(ant.received.length - n, 2);
    assert.equal(lastMessage(ant.received[n + 1].body).role, 'user');
  });

  it('not continued: n > 1, or no candidate left: the clean error event as before', async () => {
    a.setBehavior(() => ({ kind: 'stream', chunks: CHUNKS, cutAfter: 3, delayMs: 20 }));
    const n = b.received.length;
    const two = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', n: 2, stream: true, messages: [{ role: 'user', content: 'x' }] }),
    });
    assert.match(await two.text(), /"code":"stream_interrupted"/);
    const solo = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'solo', stream: true, messages: [{ role: 'user', content: 'x' }] }),
    });
    assert.match(await solo.text(), /"code":"stream_interrupted"/);
    assert.equal(b.received.length, n, 'nothing was sent to b');
  });
});

describe('continuation: not for tool calls', () => {
  it('a stream cut after a tool call began ends with the error event; the fallback is not asked', async () => {
    // A provider that starts a tool call, then drops the connection.
    const a = await listenLoopback(async (req, res) => {
      for await (const _ of req);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = {
        id: 'chatcmpl-t',
        object: 'chat.completion.chunk',
        created: 1,
        model: 'm',
        choices: [{ index: 0, delta: { role: 'assistant', tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"ci' } }] }, finish_reason: null }],
      };
      res.write(`data: ${JSON.stringify(chunk)}\n\n`);
      await new Promise((r) => setTimeout(r, 30));
      res.socket?.destroy();
    });
    const b = await startFakeUpstream('b');
    const gw = await startTestGateway({
      auth: { mode: 'none' },
      routing: { strategy: 'priority' },
      providers: [provider('a', `${a.origin}/v1`, ['m'], { priority: 1 }), provider('b', b.url, ['m'], { priority: 2 })],
    });
    try {
      const tools = [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }];
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', stream: true, tools, messages: [{ role: 'user', content: 'x' }] }),
      });
      assert.match(await res.text(), /"code":"stream_interrupted"/);
      assert.equal(b.received.length, 0);
      assert.equal(await metricValue(gw.metricsUrl, 'aigw_stream_continuations_total', { provider: 'a', outcome: 'ineligible' }), 1);
    } finally {
      await gw.shutdown();
      await a.close();
      await b.close();
    }
  });
});

describe('continuation: off', () => {
  it('routing.continuation off ends a cut stream with the error event and asks nobody else', async () => {
    const a = await startFakeUpstream('a', () => ({ kind: 'stream', chunks: CHUNKS, cutAfter: 3, delayMs: 20 }));
    const b = await startFakeUpstream('b');
    const gw = await startTestGateway({
      auth: { mode: 'none' },
      routing: { strategy: 'priority', continuation: 'off' },
      providers: [provider('a', a.url, ['m'], { priority: 1 }), provider('b', b.url, ['m'], { priority: 2 })],
    });
    try {
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'x' }] }),
      });
      assert.match(await res.text(), /"code":"stream_interrupted"/);
      assert.equal(b.received.length, 0);
    } finally {
      await gw.shutdown();
      await a.close();
      await b.close();
    }
  });
});
