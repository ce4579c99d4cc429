/**
 * The gateway's OpenAI API through the official openai SDK, against local fake upstreams.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import OpenAI from 'openai';
import { FakeUpstream, refusedUrl, startFakeUpstream } from '../helpers/fake-upstream';
import { metricValue, provider, startTestGateway, TestGateway } from '../helpers/gateway';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('gateway: OpenAI API through the SDK', () => {
  let up: FakeUpstream;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    up = await startFakeUpstream('alpha');
    gw = await startTestGateway({
      auth: { mode: 'none' },
      providers: [
        provider('alpha', up.url, [
          { name: 'gpt-4o-mini', upstream_name: 'gpt-4o-mini-2024-07-18', input_per_million: 0.15, output_per_million: 0.6 },
          { name: 'gpt-3.5-turbo-instruct', kind: 'completion', unpriced: true },
          { name: 'text-embedding-3-small', kind: 'embedding', unpriced: true },
        ]),
      ],
      models: { fast: { targets: [{ provider: 'alpha', model: 'gpt-4o-mini' }] } },
    });
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused-in-auth-none', maxRetries: 0 });
  });
  after(async () => {
    await gw.shutdown();
    await up.close();
  });
  beforeEach(() => {
    up.setBehavior((req) => (req.body.stream ? { kind: 'stream' } : { kind: 'ok' }));
  });

  it('chat completion: forwards with the upstream model name and provider key, and says who served it', async () => {
    const { data, response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.equal(data.choices[0].message.content, 'Hello from alpha');
    assert.equal(response.headers.get('x-gateway-provider'), 'alpha');
    assert.equal(response.headers.get('x-gateway-attempts'), '1');
    assert.match(response.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const sent = up.received.at(-1)!;
    assert.equal(sent.body.model, 'gpt-4o-mini-2024-07-18');
    assert.equal(sent.headers.authorization, 'Bearer sk-provider-alpha-secret');
  });

  it('alias: a public name maps to a provider model', async () => {
    const res = await client.chat.completions.create({ model: 'fast', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(res.choices[0].message.content, 'Hello from alpha');
    assert.equal(up.received.at(-1)!.body.model, 'gpt-4o-mini-2024-07-18');
  });

  it('streaming: chunks reach the client before the upstream has finished', async () => {
    up.setBehavior(() => ({ kind: 'stream', chunks: ['a', 'b', 'c', 'd'], delayMs: 150 }));
    const before = up.completed;
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true });
    const texts: string[] = [];
    let completedAtFirstChunk = -1;
    for await (const chunk of stream) {
      if (completedAtFirstChunk < 0) completedAtFirstChunk = up.completed - before;
      texts.push(chunk.choices[0]?.delta?.content ?? '');
      assert.equal(chunk.usage ?? null, null, 'the usage chunk the gateway asked for is hidden from a client that did not ask');
    }
    assert.equal(completedAtFirstChunk, 0, 'first chunk arrived while the upstream was still sending');
    assert.equal(texts.join(''), 'abcd');
    assert.deepEqual(up.received.at(-1)!.body.stream_options, { include_usage: true });
  });

  it('streaming: a client that asks for usage gets the usage chunk', async () => {
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
    let usage: unknown = null;
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
    assert.deepEqual(usage, { prompt_tokens: 10, completion_tokens: 6, total_tokens: 16 });
  });

  it('completions and embeddings', async () => {
    const c = await client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Say hi' });
    assert.equal(c.choices[0].text, 'Hello from alpha');
    assert.ok(up.received.at(-1)!.path.endsWith('/v1/completions'));
    const e = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] });
    assert.equal(e.data.length, 2);
    assert.ok(up.received.at(-1)!.path.endsWith('/v1/embeddings'));
  });

  it('models listing includes provider models and aliases', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids.sort(), ['fast', 'gpt-3.5-turbo-instruct', 'gpt-4o-mini', 'text-embedding-3-small']);
    const one = await client.models.retrieve('fast');
    assert.equal(one.id, 'fast');
  });

  it('unknown model: 404 in the OpenAI shape, through the SDK', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }), (err: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(err.status, 404);
      assert.equal(err.code, 'model_not_found');
      assert.equal(err.type, 'invalid_request_error');
      return true;
    });
  });

  it('a model on the wrong endpoint is a 400 naming the endpoint', async () => {
    await assert.rejects(client.embeddings.create({ model: 'gpt-4o-mini', input: 'x' }), (err: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(err.status, 400);
      assert.match(err.message, /does not support \/v1\/embeddings/);
      return true;
    });
  });

  it('propagates a client x-request-id and replaces an unsafe one', async () => {
    const ok = await fetch(`${gw.url}/v1/models`, { headers: { 'x-request-id': 'trace-123' } });
    assert.equal(ok.headers.get('x-request-id'), 'trace-123');
    const bad = await fetch(`${gw.url}/v1/models`, { headers: { 'x-request-id': 'a b<script>' } });
    assert.notEqual(bad.headers.get('x-request-id'), 'a b<script>');
  });

  it('client disconnect mid-stream aborts the upstream request', async () => {
    up.setBehavior(() => ({ kind: 'stream', chunks: Array.from({ length: 50 }, (_, i) => `t${i}`), delayMs: 40 }));
    const abortedBefore = up.aborted;
    const controller = new AbortController();
    const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true }, { signal: controller.signal });
    let n = 0;
    try {
      for await (const _chunk of stream) if (++n === 2) controller.abort();
    } catch {
      /* the SDK may end the iteration or throw an abort error */
    }
    assert.equal(n, 2, 'the client stopped after two chunks');
    for (let i = 0; i < 50 && up.aborted === abortedBefore; i++) await sleep(20);
    assert.equal(up.aborted, abortedBefore + 1, 'the upstream saw its request aborted');
    assert.ok(up.completed < up.received.length, 'the upstream did not finish sending');
  });

  it('records request, token and cost metrics', async () => {
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    assert.ok((await metricValue(gw.metricsUrl, 'aigw_requests_total', { endpoint: 'chat', provider: 'alpha', model: 'gpt-4o-mini', status_class: '2xx' })) >= 1);
    assert.ok((await metricValue(gw.metricsUrl, 'aigw_tokens_total', { provider: 'alpha', direction: 'input' })) >= 10);
    assert.ok((await metricValue(gw.metricsUrl, 'aigw_cost_usd_total', { provider: 'alpha', model: 'gpt-4o-mini' })) > 0);
    assert.ok((await metricValue(gw.metricsUrl, 'aigw_request_duration_seconds_count', { endpoint: 'chat' })) >= 1);
  });

  it('writes one JSON log line per request, without secrets', async () => {
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-request-id': 'log-check-1' } });
    await sleep(20);
    const lines = gw.logs.filter((l) => l.includes('"log-check-1"'));
    assert.equal(lines.length, 1);
    const entry = JSON.parse(lines[0]);
    assert.equal(entry.status, 200);
    assert.equal(entry.provider, 'alpha');
    assert.ok(!gw.logs.join('\n').includes('sk-provider-alpha-secret'));
  });
});

describe('gateway: bad input and broken upstreams get OpenAI-shaped errors', () => {
  let up: FakeUpstream;
  let gw: TestGateway;

  const post = async (path: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }) => {
    const res = await fetch(`${gw.url}${path}`, { method: 'POST', headers, body });
    const json = (await res.json()) as { error: { message: string; type: string; code: string } };
    return { status: res.status, json, headers: res.headers };
  };
  const chat = (model: string, extra: Record<string, unknown> = {}) => JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });

  before(async () => {
    up = await startFakeUpstream('slow', () => ({ kind: 'hang' }));
    gw = await startTestGateway({
      auth: { mode: 'none' },
      server: { body_limit_bytes: 10_000 },
      routing: { max_retries: 0, timeout_ms: 3000 },
      providers: [provider('slow', up.url, ['hangs'], { timeout_ms: 300 }), provider('down', await refusedUrl(), ['unreachable'])],
    });
  });
  after(async () => {
    await gw.shutdown();
    await up.close();
  });

  const cases: Array<[string, () => Promise<{ status: number; json: { error: { code: string; type: string; message: string } } }>, number, string]> = [
    ['malformed JSON', () => post('/v1/chat/completions', '{"model": "x", '), 400, 'invalid_json'],
    ['missing model', () => post('/v1/chat/completions', JSON.stringify({ messages: [] })), 400, 'missing_model'],
    ['non-string model', () => post('/v1/chat/completions', JSON.stringify({ model: 7, messages: [{ role: 'user', content: 'x' }] })), 400, 'invalid_model'],
    ['missing messages', () => post('/v1/chat/completions', JSON.stringify({ model: 'hangs' })), 400, 'missing_required_parameter'],
    ['unknown model', () => post('/v1/chat/completions', chat('gpt-99')), 404, 'model_not_found'],
    ['body over the limit', () => post('/v1/chat/completions', chat('hangs', { pad: 'x'.repeat(20_000) })), 413, 'request_too_large'],
    ['wrong content type', () => post('/v1/chat/completions', chat('hangs'), { 'content-type': 'text/plain' }), 415, 'unsupported_media_type'],
    ['negative max_tokens', () => post('/v1/chat/completions', chat('hangs', { max_tokens: -5 })), 400, 'invalid_value'],
    ['huge max_tokens', () => post('/v1/chat/completions', chat('hangs', { max_tokens: 1e12 })), 400, 'invalid_value'],
    ['non-boolean stream', () => post('/v1/chat/completions', chat('hangs', { stream: 'yes' })), 400, 'invalid_type'],
    ['upstream unreachable', () => post('/v1/chat/completions', chat('unreachable')), 502, 'upstream_unavailable'],
    ['upstream timeout', () => post('/v1/chat/completions', chat('hangs')), 504, 'upstream_timeout'],
    [
      'unknown endpoint',
      async () => {
        const r = await fetch(`${gw.url}/nope`);
        return { status: r.status, json: (await r.json()) as { error: { code: string; type: string; message: string } } };
      },
      404,
      'unknown_url',
    ],
  ];
  for (const [name, run, status, code] of cases) {
    it(`${name}: ${status} ${code}`, async () => {
      const res = await run();
      assert.equal(res.status, status);
      assert.equal(res.json.error.code, code);
      assert.equal(typeof res.json.error.message, 'string');
      assert.equal(typeof res.json.error.type, 'string');
      assert.ok(!JSON.stringify(res.json).includes('127.0.0.1'), 'no upstream URL in the error');
      assert.ok(!JSON.stringify(res.json).includes('sk-provider'), 'no provider key in the error');
    });
  }

  it('a client that hangs up while the upstream is slow does not break the gateway', async () => {
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' } });
      req.on('error', () => resolve());
      req.end(chat('hangs'));
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 50);
    });
    const health = await fetch(`${gw.url}/health`);
    assert.equal(health.status, 200);
  });
});
