/**
 * Graceful shutdown of the real process (service/main.ts): SIGTERM in the middle of mixed
 * streaming and non-streaming load. Every request accepted before the signal completes with
 * its full answer, /ready answers 503 while draining, new connections are refused, spend
 * reaches Redis, and the process exits 0.
 */
import assert from 'node:assert/strict';
import { connect, Socket } from 'node:net';
import Redis from 'ioredis';
import { RedisSpendStore, spendReport } from '../../service/cost/spend';
import { hashKey } from '../../service/tenancy/keys';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { GatewayProcess, startGatewayProcess } from '../helpers/gateway-process';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { chatBody, parseSse, waitFor } from './helpers';

const CLIENT_KEY = 'sk-gw-shutdown-client-key';
const STREAM_CHUNKS = Array.from({ length: 20 }, (_x, i) => `c${i} `);
const STREAM_TEXT = STREAM_CHUNKS.join('');
const PRICES = { input_per_million: 1, output_per_million: 2 };

describe('graceful shutdown of the gateway process (SIGTERM under load)', function () {
  this.timeout(40_000);
  let redisServer: RedisServer | undefined;
  let upstream: FakeUpstream | undefined;
  let gw: GatewayProcess | undefined;

  after(async () => {
    await gw?.stop('SIGKILL');
    await upstream?.close();
    await redisServer?.close();
  });

  it('drains in-flight streams and requests, reports not ready, refuses new connections, flushes spend, exits 0', async () => {
    redisServer = await startRedis();
    // Streams: 20 chunks x 50 ms (about 1 s). Non-streaming answers: 800 ms.
    upstream = await startFakeUpstream('slow', (req) => (req.body.stream ? { kind: 'stream', chunks: STREAM_CHUNKS, delayMs: 50 } : { kind: 'ok', delayMs: 800, content: 'full answer' }));
    const prefix = `shutdown-${process.pid}-${Date.now()}:`;
    gw = await startGatewayProcess({
      server: { shutdown_grace_ms: 10_000 },
      auth: { keys: [{ hash: hashKey(CLIENT_KEY), name: 'ci', team: 'red', project: 'web' }] },
      teams: [{ name: 'red' }],
      providers: [{ name: 'slow', base_url: upstream.url, api_key: 'sk-provider-slow', timeout_ms: 5000, models: [{ name: 'm', ...PRICES }] }],
      redis: { url: redisServer.url, key_prefix: prefix, command_timeout_ms: 200 },
    });
    const base = gw.url;
    const port = Number(new URL(base).port);

    // A connection with a slow request in flight, to send /ready on during the drain (idle
    // keep-alive connections are closed at once by the drain, so only a busy one can ask).
    const probe: Socket = connect(port, '127.0.0.1');
    let probeText = '';
    probe.on('data', (d) => (probeText += d));
    probe.on('error', () => undefined);
    const probeClosed = new Promise<void>((r) => probe.on('close', () => r()));
    const slowBody = JSON.stringify(chatBody('m'));
    probe.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${CLIENT_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(slowBody)}\r\n\r\n${slowBody}`,
    );

    const auth = { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json' };
    const N_STREAMS = 12;
    const N_PLAIN = 12;
    const streams = Array.from({ length: N_STREAMS }, async () => {
      const res = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: auth, body: JSON.stringify(chatBody('m', { stream: true, stream_options: { include_usage: true } })) });
      return { status: res.status, sse: parseSse(await res.text()) };
    });
    const plain = Array.from({ length: N_PLAIN }, async () => {
      const res = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: auth, body: JSON.stringify(chatBody('m')) });
      return { status: res.status, body: (await res.json()) as { choices: Array<{ message: { content: string } }>; usage: { prompt_tokens: number; completion_tokens: number } } };
    });
    // Every request has been accepted and reached the upstream: now the signal.
    await waitFor(() => upstream!.received.length === N_STREAMS + N_PLAIN + 1, 'all requests in flight');
    const signalledAt = Date.now();
    gw.proc.kill('SIGTERM');

    // Draining: /ready on the busy connection says 503, new connections are refused. The drain
    // begins when the child's signal handler runs: wait for the listener to close (a loaded
    // machine can take longer than any fixed pause), then ask.
    const connectOutcome = () =>
      new Promise<string>((resolve) => {
        const s = connect(port, '127.0.0.1');
        s.once('connect', () => (s.destroy(), resolve('accepted')));
        s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      });
    await waitFor(async () => (await connectOutcome()) === 'ECONNREFUSED', 'the listener closed after SIGTERM', 5000);
    probe.write('GET /ready HTTP/1.1\r\nHost: x\r\n\r\n');
    const refused = await fetch(`${base}/health`).then(
      () => 'accepted',
      (err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.message,
    );
    assert.equal(refused, 'ECONNREFUSED', 'a new connection after SIGTERM is refused');

    const streamResults = await Promise.all(streams);
    const plainResults = await Promise.all(plain);
    for (const s of streamResults) {
      assert.equal(s.status, 200);
      assert.equal(s.sse.error, undefined, 'no SSE error event');
      assert.equal(s.sse.content, STREAM_TEXT, 'the whole stream arrived');
      assert.ok(s.sse.done, 'the stream ended with [DONE]');
    }
    for (const p of plainResults) {
      assert.equal(p.status, 200);
      assert.equal(p.body.choices[0].message.content, 'full answer');
    }
    assert.ok(Date.now() - signalledAt >= 500, 'requests were still running when SIGTERM arrived');

    await probeClosed;
    const [first, second] = probeText.split(/(?=HTTP\/1\.1 )/);
    assert.match(first, /^HTTP\/1\.1 200 /, 'the in-flight request on the probe connection completed');
    assert.match(second ?? '', /^HTTP\/1\.1 503 /, '/ready answers 503 while draining');
    assert.match(second, /"status":"draining"/);
    assert.match(second, /connection: close/i);

    const exit = await gw.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, `exit status; output: ${gw.output().slice(-2000)}`);

    // Spend reached Redis: the report's total equals what the client can compute from the usage it saw.
    let expected = 0;
    const cost = (u: { prompt_tokens: number; completion_tokens: number }) => (u.prompt_tokens * PRICES.input_per_million + u.completion_tokens * PRICES.output_per_million) / 1e6;
    for (const s of streamResults) expected += cost(s.sse.usage!);
    for (const p of plainResults) expected += cost(p.body.usage);
    expected += cost({ prompt_tokens: 10, completion_tokens: 5 }); // the probe connection's request
    const redis = new Redis(redisServer.url, { keyPrefix: prefix, lazyConnect: true });
    try {
      await redis.connect();
      const report = await spendReport(new RedisSpendStore(redis), {}, Date.now());
      assert.equal(report.totals.requests, N_STREAMS + N_PLAIN + 1);
      assert.ok(Math.abs(report.totals.cost_usd - expected) < 1e-9, `spend ${report.totals.cost_usd} vs client-computed ${expected}`);
    } finally {
      redis.disconnect();
    }
  });
});
