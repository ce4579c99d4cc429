/**
 * The failover table (the public failover benchmark's 16 scenarios), streaming, with a scripted
 * primary `a` and a healthy fallback `b`: every scenario ends with the complete answer, or with a
 * clean error where the table says so, within bounded time, and spend and metrics match.
 * Times are scaled down: the 20 s first token is 3 s against a 500 ms first-token deadline, the
 * 60 s outage is 1.2 s against a 300 ms circuit cooldown.
 */
import assert from 'node:assert/strict';
import { hashKey } from '../../service/tenancy/keys';
import { FakeAnthropic, startFakeAnthropic } from '../helpers/fake-anthropic';
import { Behavior, DEFAULT_CHUNKS, FakeUpstream, Received, startFakeUpstream } from '../helpers/fake-upstream';
import { metricValue, provider, startTestGateway, TestGateway } from '../helpers/gateway';
import { parseSse } from './helpers';

const KEY = 'sk-gw-failover-table';
const TOKENS = Array.from({ length: 60 }, (_, i) => `t${i} `);
const B_TEXT = DEFAULT_CHUNKS.join('');
const TOO_LONG = { error: { message: "This model's maximum context length is 8192 tokens.", type: 'invalid_request_error', param: 'messages', code: 'context_length_exceeded' } };
const POLICY = { error: { message: 'Your request was rejected as a result of our safety system.', type: 'invalid_request_error', param: null, code: 'content_policy_violation' } };

interface Row {
  name: string;
  /** a's behaviour for its n-th request. */
  a: (n: number, req: Received) => Behavior;
  model?: string;
  /** The text the client must end up with, or the code of the clean error. */
  expect: { content: string; from: string } | { error: string; status: number };
  /** Upper bound on the request's time. */
  withinMs: number;
  atLeastMs?: number;
}

const ROWS: Row[] = [
  {
    name: '429 with Retry-After: waits as asked, then the same provider answers',
    a: (n) => (n === 1 ? { kind: 'status', status: 429, headers: { 'retry-after': '1' } } : { kind: 'stream', chunks: TOKENS }),
    expect: { content: TOKENS.join(''), from: 'a' },
    withinMs: 3_000,
    atLeastMs: 900,
  },
  { name: '429 without Retry-After, always: retried with backoff, then failed over', a: () => ({ kind: 'status', status: 429 }), expect: { content: B_TEXT, from: 'b' }, withinMs: 3_000 },
  {
    name: '500 once: retried on the same provider',
    a: (n) => (n === 1 ? { kind: 'status', status: 500 } : { kind: 'stream', chunks: TOKENS }),
    expect: { content: TOKENS.join(''), from: 'a' },
    withinMs: 3_000,
  },
  { name: '503 always: failed over', a: () => ({ kind: 'status', status: 503 }), expect: { content: B_TEXT, from: 'b' }, withinMs: 3_000 },
  { name: 'reset before headers: failed over', a: () => ({ kind: 'reset' }), expect: { content: B_TEXT, from: 'b' }, withinMs: 3_000 },
  { name: 'no answer at all: failed over after the headers deadline, not retried', a: () => ({ kind: 'hang' }), expect: { content: B_TEXT, from: 'b' }, withinMs: 3_000 },
  {
    name: 'first token after "20 s": failed over after the first-token deadline',
    a: () => ({ kind: 'stream', chunks: TOKENS, firstEventDelayMs: 3_000 }),
    expect: { content: B_TEXT, from: 'b' },
    withinMs: 2_500,
  },
  {
    name: 'cut after 40 of 60 tokens: continued by the fallback',
    a: () => ({ kind: 'stream', chunks: TOKENS, cutAfter: 40, delayMs: 5 }),
    expect: { content: TOKENS.slice(0, 40).join('') + B_TEXT, from: 'a' },
    withinMs: 4_000,
  },
  {
    name: 'stall after 20 tokens: continued by the fallback',
    a: () => ({ kind: 'stream', chunks: TOKENS, stallAfter: 20, delayMs: 2 }),
    expect: { content: TOKENS.slice(0, 20).join('') + B_TEXT, from: 'a' },
    withinMs: 4_000,
  },
  {
    name: 'invalid tenth event: skipped and counted, the rest relayed',
    a: () => ({ kind: 'stream', chunks: TOKENS, invalidAt: 9 }),
    expect: { content: TOKENS.filter((_, i) => i !== 9).join(''), from: 'a' },
    withinMs: 3_000,
  },
  {
    name: 'no [DONE] (the stream closes without its end): continued by the fallback',
    a: () => ({ kind: 'stream', chunks: TOKENS.slice(0, 30), noEnd: true }),
    expect: { content: TOKENS.slice(0, 30).join('') + B_TEXT, from: 'a' },
    withinMs: 4_000,
  },
  {
    name: 'context length exceeded: failed over to the larger window',
    a: () => ({ kind: 'status', status: 400, body: TOO_LONG }),
    model: 'long',
    expect: { content: B_TEXT, from: 'b' },
    withinMs: 3_000,
  },
  {
    name: 'content policy: a clean 400 with its reason, no retry',
    a: () => ({ kind: 'status', status: 400, body: POLICY }),
    expect: { error: 'content_policy_violation', status: 400 },
    withinMs: 3_000,
  },
];

describe('failover table (streaming)', function () {
  this.timeout(30_000);
  let a: FakeUpstream;
  let b: FakeUpstream;
  let gw: TestGateway;
  let row: Row | undefined;

  before(async () => {
    a = await startFakeUpstream('a');
    b = await startFakeUpstream('b');
  });
  after(async () => {
    await a.close();
    await b.close();
  });
  beforeEach(async () => {
    // A fresh gateway per row: breakers and stats start closed and empty.
    gw = await startTestGateway({
      auth: { keys: [{ hash: hashKey(KEY), name: 'app', team: 'web', project: 'site' }] },
      routing: {
        strategy: 'priority',
        max_retries: 2,
        retry_delay_ms: 20,
        max_retry_delay_ms: 100,
        retry_after_cap_ms: 2_000,
        deadlines: { headers_ms: 300, first_token_ms: 500, between_events_ms: 300 },
      },
      providers: [
        provider(
          'a',
          a.url,
          [
            { name: 'm', input_per_million: 1, output_per_million: 2 },
            { name: 'long', context_window: 8_192, input_per_million: 1, output_per_million: 2 },
          ],
          { priority: 1, timeout_ms: 5_000 },
        ),
        provider(
          'b',
          b.url,
          [
            { name: 'm', input_per_million: 1, output_per_million: 2 },
            { name: 'long', context_window: 128_000, input_per_million: 1, output_per_million: 2 },
          ],
          { priority: 2 },
        ),
      ],
    });
  });
  afterEach(async () => {
    await gw.shutdown();
    row = undefined;
  });

  for (const r of ROWS) {
    it(r.name, async () => {
      row = r;
      let count = 0;
      a.setBehavior((req) => r.a(++count, req));
      const t0 = Date.now();
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: r.model ?? 'm', stream: true, messages: [{ role: 'user', content: 'count' }] }),
      });
      const text = await res.text();
      const ms = Date.now() - t0;
      if ('error' in r.expect) {
        assert.equal(res.status, r.expect.status);
        assert.equal((JSON.parse(text) as { error: { code: string } }).error.code, r.expect.error);
      } else {
        assert.equal(res.status, 200, text.slice(0, 300));
        const sse = parseSse(text);
        assert.equal(sse.error, undefined, `no error event: ${JSON.stringify(sse.error)}`);
        assert.equal(sse.done, true, 'the stream ends with [DONE]');
        assert.equal(sse.content, r.expect.content);
        assert.equal(res.headers.get('x-gateway-provider'), r.expect.from);
      }
      assert.ok(ms < r.withinMs, `took ${ms} ms (bound ${r.withinMs})`);
      if (r.atLeastMs) assert.ok(ms >= r.atLeastMs, `took ${ms} ms (at least ${r.atLeastMs})`);
    });
  }

  it('failover accounting: a failed attempt costs nothing, a cut attempt is billed on its estimate, the answering one on its usage', async () => {
    let count = 0;
    a.setBehavior(() => (++count === 1 ? { kind: 'status', status: 503 } : { kind: 'stream', chunks: TOKENS, cutAfter: 40, delayMs: 5 }));
    const call = () =>
      fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'count' }] }),
      }).then((r) => r.text());
    await call(); // a 503 (and its retries answer the cut stream: max_retries 2) ...
    const cost = (p: string, estimated: string) => metricValue(gw.metricsUrl, 'aigw_cost_usd_total', { provider: p, estimated });
    const until = Date.now() + 3_000;
    while ((await cost('b', 'false')) === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    assert.ok((await cost('a', 'true')) > 0, 'the cut attempt, on its estimate');
    assert.equal(await cost('a', 'false'), 0, 'no usage from a was ever final');
    assert.ok((await cost('b', 'false')) > 0, 'the continuation, on its usage');
    const tokens = await metricValue(gw.metricsUrl, 'aigw_tokens_total', { provider: 'a', direction: 'output' });
    assert.ok(tokens >= 40, `the 40 tokens the client received are billed (${tokens})`);
  });
});

describe('failover table: a fallback that rejects the prefill', () => {
  it('is asked again with an instruction; the client gets the whole answer', async () => {
    const a = await startFakeUpstream('a', () => ({ kind: 'stream', chunks: TOKENS, cutAfter: 40, delayMs: 5 }));
    const ant: FakeAnthropic = await startFakeAnthropic((req) => {
      const last = (req.body.messages as Array<{ role: string }>).at(-1)!;
      return last.role === 'assistant' ? { kind: 'error', status: 400, type: 'invalid_request_error', message: 'Prefill is not supported by this model.' } : { kind: 'answer' };
    });
    const gw = await startTestGateway({
      auth: { mode: 'none' },
      routing: { strategy: 'priority' },
      providers: [
        provider('a', a.url, ['m'], { priority: 1 }),
        { ...provider('ant', ant.url, [{ name: 'm', upstream_name: 'claude-x', input_per_million: 1, output_per_million: 2 }], { priority: 2 }), type: 'anthropic', api_key: ant.apiKey },
      ],
    });
    try {
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'count' }] }),
      });
      const sse = parseSse(await res.text());
      assert.equal(sse.error, undefined);
      assert.equal(sse.content, `${TOKENS.slice(0, 40).join('')}Hello from Claude.`);
      assert.equal(ant.received.length, 2);
    } finally {
      await gw.shutdown();
      await a.close();
      await ant.close();
    }
  });
});

describe('failover table: a flapping primary', function () {
  this.timeout(30_000);
  it('down for a while, then healthy: the fallback serves meanwhile, the primary is back within the cooldown', async () => {
    let downUntil = 0;
    const a = await startFakeUpstream('a', () => (Date.now() < downUntil ? { kind: 'status', status: 503 } : { kind: 'stream' }));
    const b = await startFakeUpstream('b');
    const gw = await startTestGateway({
      auth: { mode: 'none' },
      routing: { strategy: 'priority', max_retries: 0, circuit_breaker: { consecutive_failures: 2, cooldown_ms: 300 } },
      providers: [provider('a', a.url, ['m'], { priority: 1 }), provider('b', b.url, ['m'], { priority: 2 })],
    });
    try {
      downUntil = Date.now() + 1_200;
      const served: Array<{ at: number; by: string }> = [];
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'x' }] }),
        });
        const sse = parseSse(await res.text());
        assert.equal(sse.done, true, `request ${i} got the whole answer`);
        served.push({ at: Date.now(), by: res.headers.get('x-gateway-provider')! });
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(served[0].by, 'b', 'the fallback serves while the primary is down');
      const back = served.find((s) => s.at > downUntil && s.by === 'a');
      assert.ok(back, `the primary is back: ${served.map((s) => s.by).join('')}`);
      assert.ok(back.at - downUntil < 1_000, `back ${back.at - downUntil} ms after it recovered (cooldown 300 ms)`);
      assert.deepEqual(
        served.filter((s) => s.at > back.at).map((s) => s.by),
        served.filter((s) => s.at > back.at).map(() => 'a'),
        'and stays there',
      );
    } finally {
      await gw.shutdown();
      await a.close();
      await b.close();
    }
  });
});
