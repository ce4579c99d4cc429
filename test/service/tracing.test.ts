/**
 * OpenTelemetry traces, end to end: a real gateway process configured only by the standard
 * OTEL_* variables, exporting to a local OTLP/HTTP receiver; the real `openai` SDK as the
 * client, sending its own W3C traceparent; fake providers that fail, fail over and stream.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import OpenAI from 'openai';
import { hashKey } from '../../service/tenancy/keys';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { GatewayProcess, startGatewayProcess } from '../helpers/gateway-process';
import { provider, startTestGateway } from '../helpers/gateway';
import { OtlpReceiver, ReceivedSpan, startOtlpReceiver } from '../helpers/otlp-receiver';
import { request as httpRequest } from 'node:http';

const CLIENT_KEY = `sk-client-trace-${randomBytes(8).toString('hex')}`;
const PROMPT = `PROMPT-CANARY-${randomBytes(6).toString('hex')}`;
const COMPLETION = `COMPLETION-CANARY-${randomBytes(6).toString('hex')}`;
const CHUNKS = ['STREAM-CANARY-one', ' STREAM-CANARY-two', ' STREAM-CANARY-three'];
const SERVER = 2;
const CLIENT = 3;

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const clientTraceparent = () => ({ traceId: hex(16), parentId: hex(8) });

function config(flaky: FakeUpstream, backup: FakeUpstream, sloth?: FakeUpstream) {
  return {
    server: { log_level: 'info' as const },
    auth: { mode: 'keys' as const, keys: [{ hash: hashKey(CLIENT_KEY), name: 'tracer', team: 'research', project: 'rag' }] },
    routing: { strategy: 'priority' as const, max_retries: 1, retry_delay_ms: 1, circuit_breaker: { consecutive_failures: 1000, min_requests: 1000 } },
    providers: [
      // An Azure deployment that keeps failing (503), tried first, then an OpenAI-type provider.
      provider('flaky', flaky.url.replace(/\/v1$/, ''), [{ name: 'm', upstream_name: 'm-deployment', input_per_million: 1, output_per_million: 2 }], {
        type: 'azure',
        api_version: '2024-10-21',
        priority: 1,
      }),
      provider(
        'backup',
        backup.url,
        [
          { name: 'm', upstream_name: 'm-2025', input_per_million: 1, output_per_million: 2 },
          { name: 'e', kind: 'embedding' },
        ],
        { priority: 2 },
      ),
      ...(sloth ? [provider('sloth', sloth.url, ['slow'], { timeout_ms: 10_000 })] : []),
    ],
  };
}

const otelEnv = (receiver: OtlpReceiver, extra: Record<string, string> = {}) => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
  OTEL_SERVICE_NAME: 'aigw-under-test',
  OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test',
  OTEL_BSP_SCHEDULE_DELAY: '50',
  ...extra,
});

const inTrace = (traceId: string) => (spans: ReceivedSpan[]) => spans.filter((s) => s.traceId === traceId);
const serverSpan = (spans: ReceivedSpan[]) => spans.find((s) => s.kind === SERVER);
const attemptSpans = (spans: ReceivedSpan[]) => spans.filter((s) => s.kind === CLIENT).sort((a, b) => Number(a.attrs['aigw.attempt']) - Number(b.attrs['aigw.attempt']));

/** A trace's spans once its server span and `attempts` attempt spans are in (one trace's spans can come in different batches: the failed attempts' before the server span). */
const completeTrace = (receiver: OtlpReceiver, traceId: string, attempts: number): Promise<ReceivedSpan[]> =>
  receiver
    .waitFor((s) => {
      const t = inTrace(traceId)(s);
      return serverSpan(t) !== undefined && attemptSpans(t).length >= attempts;
    })
    .then(inTrace(traceId));

/** The gateway's first log line containing `text`: lines are written asynchronously, in batches (telemetry/log-batch.ts). */
async function logLine(gw: { output(): string }, text: string): Promise<string | undefined> {
  for (let waited = 0; waited < 3_000; waited += 50) {
    const line = gw
      .output()
      .split('\n')
      .find((l) => l.includes(text));
    if (line) return line;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

describe('OpenTelemetry traces (standard OTEL_* variables, OTLP/HTTP)', function () {
  this.timeout(60_000);
  let receiver: OtlpReceiver;
  let flaky: FakeUpstream;
  let backup: FakeUpstream;
  let sloth: FakeUpstream;
  let gw: GatewayProcess;
  let client: OpenAI;

  before(async () => {
    receiver = await startOtlpReceiver();
    flaky = await startFakeUpstream('flaky', () => ({ kind: 'status', status: 503 }));
    backup = await startFakeUpstream('backup', (req) => (req.body.stream ? { kind: 'stream', chunks: CHUNKS, delayMs: 60 } : { kind: 'ok', content: COMPLETION }));
    sloth = await startFakeUpstream('sloth', () => ({ kind: 'hang' }));
    gw = await startGatewayProcess(config(flaky, backup, sloth), otelEnv(receiver, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }));
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
  });
  after(async () => {
    await gw?.stop();
    await Promise.all([flaky?.close(), backup?.close(), sloth?.close(), receiver?.close()]);
  });

  it('failover: a server span under the client traceparent, one client span per attempt as siblings, GenAI and aigw attributes', async () => {
    const { traceId, parentId } = clientTraceparent();
    const before = { flaky: flaky.received.length, backup: backup.received.length };
    const { response } = await client.chat.completions
      .create({ model: 'm', messages: [{ role: 'user', content: PROMPT }] }, { headers: { traceparent: `00-${traceId}-${parentId}-01` } })
      .withResponse();
    assert.equal(response.headers.get('x-gateway-attempts'), '3');
    const spans = await completeTrace(receiver, traceId, 3);

    const server = serverSpan(spans)!;
    assert.ok(server, 'a server span');
    assert.equal(server.parentSpanId, parentId, "the server span's parent is the client's span");
    assert.equal(server.name, 'POST /v1/chat/completions');
    assert.equal(server.resource['service.name'], 'aigw-under-test');
    assert.equal(server.resource['deployment.environment.name'], 'test');
    const cost = (10 * 1 + 5 * 2) / 1e6;
    assert.deepEqual(
      { ...server.attrs, 'aigw.cost_usd': Math.round(Number(server.attrs['aigw.cost_usd']) * 1e9) / 1e9 },
      {
        'aigw.request_id': response.headers.get('x-request-id'),
        'http.request.method': 'POST',
        'http.route': '/v1/chat/completions',
        'url.path': '/v1/chat/completions',
        'http.response.status_code': 200,
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'm',
        'gen_ai.response.model': 'm-2025',
        'gen_ai.usage.input_tokens': 10,
        'gen_ai.usage.output_tokens': 5,
        'aigw.usage.estimated': false,
        'aigw.team': 'research',
        'aigw.project': 'rag',
        'aigw.cost_usd': cost,
        'aigw.attempts': 3,
        'aigw.cache': 'none',
        'aigw.route.strategy': 'priority',
        'aigw.provider': 'backup',
        'aigw.stream': false,
      },
    );

    const attempts = attemptSpans(spans);
    assert.equal(attempts.length, 3, 'one client span per attempt');
    for (const a of attempts) assert.equal(a.parentSpanId, server.spanId, 'attempts are siblings under the server span');
    assert.deepEqual(
      attempts.map((a) => [
        a.name,
        a.attrs['aigw.attempt'],
        a.attrs['aigw.provider'],
        a.attrs['gen_ai.provider.name'],
        a.attrs['gen_ai.request.model'],
        a.attrs['http.response.status_code'],
        a.attrs['error.type'],
        a.status,
      ]),
      [
        ['chat m-deployment', 1, 'flaky', 'azure.ai.openai', 'm-deployment', 503, 'status_retryable', 2],
        ['chat m-deployment', 2, 'flaky', 'azure.ai.openai', 'm-deployment', 503, 'status_retryable', 2],
        ['chat m-2025', 3, 'backup', 'openai', 'm-2025', undefined, undefined, 0],
      ],
    );
    const winner = attempts[2];
    assert.equal(winner.attrs['gen_ai.operation.name'], 'chat');
    assert.equal(winner.attrs['gen_ai.response.model'], 'm-2025');
    assert.equal(winner.attrs['gen_ai.usage.input_tokens'], 10);
    assert.equal(winner.attrs['gen_ai.usage.output_tokens'], 5);
    assert.equal(winner.attrs['server.address'], '127.0.0.1');
    for (const a of attempts) assert.ok(a.startNs >= server.startNs && a.endNs <= server.endNs, 'attempts lie within the server span');

    // Each attempt carried its own span's traceparent to the provider.
    const sent = [...flaky.received.slice(before.flaky), ...backup.received.slice(before.backup)].map((r) => r.headers.traceparent);
    assert.deepEqual(
      sent,
      attempts.map((a) => `00-${traceId}-${a.spanId}-01`),
    );

    // The request log line carries the trace id.
    const line = await logLine(gw, `"trace_id":"${traceId}"`);
    assert.ok(line, `a log line with trace_id ${traceId}`);
    assert.match(line!, /"request_id":"[^"]+"/);
  });

  it('streaming: the server span and the winning attempt end when the stream ends, with usage', async () => {
    const { traceId, parentId } = clientTraceparent();
    const t0 = Date.now();
    const stream = await client.chat.completions.create({ model: 'm', stream: true, messages: [{ role: 'user', content: PROMPT }] }, { headers: { traceparent: `00-${traceId}-${parentId}-01` } });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    const streamMs = Date.now() - t0;
    assert.equal(text, CHUNKS.join(''));
    const spans = await completeTrace(receiver, traceId, 3);
    const server = serverSpan(spans)!;
    const attempts = attemptSpans(spans);
    assert.equal(server.parentSpanId, parentId);
    assert.equal(attempts.length, 3);
    const winner = attempts[2];
    // The fake provider takes 3 x 60 ms to stream: the spans cover it, not just the first byte.
    const ms = (s: ReceivedSpan) => Number(s.endNs - s.startNs) / 1e6;
    assert.ok(ms(winner) >= 150, `the winning attempt lasted ${ms(winner)} ms (stream ~180 ms)`);
    // It ends with the response ('close', in the gateway's process): not before the winning attempt, and not long after
    // what the client saw (the margin is for the gateway's process being scheduled late on a loaded machine).
    assert.ok(ms(server) >= ms(winner) && ms(server) <= streamMs + 500, `server span ${ms(server)} ms, client saw ${streamMs} ms`);
    assert.equal(server.attrs['aigw.stream'], true);
    assert.equal(server.attrs['aigw.cache'], 'none');
    for (const s of [server, winner]) {
      assert.equal(s.attrs['gen_ai.usage.input_tokens'], 10);
      assert.equal(s.attrs['gen_ai.usage.output_tokens'], CHUNKS.length);
      assert.equal(s.attrs['gen_ai.response.model'], 'm-2025');
    }
  });

  it('a request without traceparent starts its own trace; embeddings are named as such', async () => {
    const { response } = await client.embeddings.create({ model: 'e', input: PROMPT }).withResponse();
    const rid = response.headers.get('x-request-id');
    const line = (await logLine(gw, `"request_id":"${rid}"`))!;
    const traceId = /"trace_id":"([0-9a-f]{32})"/.exec(line)?.[1];
    assert.ok(traceId, `trace id in ${line}`);
    const spans = await completeTrace(receiver, traceId!, 1);
    const server = serverSpan(spans)!;
    assert.equal(server.parentSpanId, '', 'a root span');
    assert.equal(server.name, 'POST /v1/embeddings');
    assert.equal(server.attrs['gen_ai.operation.name'], 'embeddings');
    assert.deepEqual(
      attemptSpans(spans).map((a) => a.name),
      ['embeddings e'],
    );
  });

  it('an absolute-form target and an upper-case path are served under the same route, each with its span and traceparent upstream', async () => {
    const origin = new URL(gw.url);
    for (const path of [`${gw.url}/v1/chat/completions`, '/V1/CHAT/COMPLETIONS']) {
      const { traceId, parentId } = clientTraceparent();
      const before = backup.received.length;
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          {
            host: origin.hostname,
            port: origin.port,
            method: 'POST',
            path,
            headers: { authorization: `Bearer ${CLIENT_KEY}`, 'content-type': 'application/json', traceparent: `00-${traceId}-${parentId}-01` },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode!));
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }] }));
      });
      assert.equal(status, 200, path);
      const spans = await completeTrace(receiver, traceId, 3);
      assert.equal(serverSpan(spans)?.name, 'POST /v1/chat/completions', path);
      const sent = backup.received.slice(before).map((r) => String(r.headers.traceparent));
      assert.ok(
        sent.some((t) => t.includes(traceId)),
        `${path}: traceparent upstream carries the trace (${sent.join(', ')})`,
      );
    }
  });

  it('a client that leaves mid-attempt: the attempt span ends as client_gone, and nothing touches an ended span', async () => {
    const { traceId, parentId } = clientTraceparent();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    await assert.rejects(
      client.chat.completions.create({ model: 'slow', messages: [{ role: 'user', content: PROMPT }] }, { headers: { traceparent: `00-${traceId}-${parentId}-01` }, signal: ac.signal }),
    );
    const spans = await completeTrace(receiver, traceId, 1);
    const attempts = attemptSpans(spans);
    assert.deepEqual(
      attempts.map((a) => [a.name, a.attrs['error.type'], a.status, a.parentSpanId]),
      [['chat slow', 'client_gone', 2, serverSpan(spans)!.spanId]],
    );
    await new Promise((r) => setTimeout(r, 300)); // the executor notices the abort after the response closed
    assert.doesNotMatch(gw.output(), /Cannot execute the operation on ended Span/);
  });

  it('no key (provider or client) and no message content anywhere in what was exported', async () => {
    await receiver.waitFor((s) => s.length >= 10);
    const all = Buffer.concat(receiver.payloads.map((p) => p.body)).toString('utf8');
    assert.ok(all.includes('gen_ai.operation.name'), 'the payloads are the exported spans');
    for (const secret of ['sk-provider-flaky-secret', 'sk-provider-backup-secret', CLIENT_KEY, hashKey(CLIENT_KEY).slice(7), PROMPT, COMPLETION, ...CHUNKS.map((c) => c.trim())]) {
      assert.ok(!all.includes(secret), `exported payload contains ${secret.slice(0, 24)}...`);
    }
    assert.ok(receiver.payloads.every((p) => p.path === '/v1/traces'));
  });
});

describe('OpenTelemetry traces: defaults and the off switch', function () {
  this.timeout(60_000);

  it('default protocol is OTLP http/protobuf, with the trace id and no secret in the bytes', async () => {
    const receiver = await startOtlpReceiver();
    const flaky = await startFakeUpstream('flaky', () => ({ kind: 'status', status: 503 }));
    const backup = await startFakeUpstream('backup', () => ({ kind: 'ok', content: COMPLETION }));
    const gw = await startGatewayProcess(config(flaky, backup), otelEnv(receiver));
    try {
      const { traceId, parentId } = clientTraceparent();
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
      await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: PROMPT }] }, { headers: { traceparent: `00-${traceId}-${parentId}-01` } });
      const until = Date.now() + 10_000;
      while (receiver.spanCount < 4 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      // The spans can arrive in more than one batch (the failed attempts end 50 ms, one export delay, before the rest).
      const ps = receiver.payloads.filter((x) => x.body.includes(Buffer.from(traceId, 'hex')));
      assert.ok(ps.length, 'a payload carrying the trace id (16 raw bytes)');
      for (const p of ps) assert.deepEqual([p.contentType, p.path], ['application/x-protobuf', '/v1/traces']);
      const bytes = Buffer.concat(ps.map((p) => p.body)).toString('latin1');
      for (const s of ['POST /v1/chat/completions', 'chat m-deployment', 'chat m-2025', 'gen_ai.usage.output_tokens', 'aigw.team']) assert.ok(bytes.includes(s), `payload has ${s}`);
      for (const secret of ['sk-provider-flaky-secret', 'sk-provider-backup-secret', CLIENT_KEY, PROMPT, COMPLETION]) assert.ok(!bytes.includes(secret), `payload contains ${secret}`);
      // A server span and three attempts, decoded from the protobuf (the probes of /ready are not traced).
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(receiver.spanCount, 4);
    } finally {
      await gw.stop();
      await Promise.all([flaky.close(), backup.close(), receiver.close()]);
    }
  });

  it('no OTEL_* variable: the SDK is never loaded and the log line has no trace id; with one it is', () => {
    const script = join(__dirname, 'tracing-probe.ts');
    const run = (env: Record<string, string>) => {
      const r = spawnSync(process.execPath, ['-r', 'tsx/cjs', script], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 0, r.stderr + r.stdout);
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as { sdkLoaded: boolean; traceId: string | null; upstreamTraceparent: string | null };
    };
    assert.deepEqual(run({}), { sdkLoaded: false, traceId: null, upstreamTraceparent: null });
    // The endpoint points at a closed port: the request is served, the export fails quietly.
    const on = run({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_BSP_SCHEDULE_DELAY: '60000' });
    assert.equal(on.sdkLoaded, true);
    assert.match(on.traceId ?? '', /^[0-9a-f]{32}$/);
    assert.match(on.upstreamTraceparent ?? '', new RegExp(`^00-${on.traceId}-[0-9a-f]{16}-01$`));
  });
});

describe('OpenTelemetry traces: the gateway config key, cache hits', function () {
  this.timeout(30_000);

  it('telemetry.otlp_endpoint alone turns tracing on; a cache hit is a server span with aigw.cache=hit and no attempt', async () => {
    const receiver = await startOtlpReceiver();
    const upstream = await startFakeUpstream('up', () => ({ kind: 'ok', content: COMPLETION }));
    // No endpoint variable: only the protocol, so the receiver can decode JSON.
    const gw = await startTestGateway(
      { auth: { mode: 'none' }, cache: { enabled: true }, telemetry: { otlp_endpoint: receiver.url }, providers: [provider('up', upstream.url, ['m'])] },
      { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
    );
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 });
    const ids: string[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const { traceId, parentId } = clientTraceparent();
        ids.push(traceId);
        const { response } = await client.chat.completions
          .create({ model: 'm', temperature: 0, messages: [{ role: 'user', content: PROMPT }] }, { headers: { traceparent: `00-${traceId}-${parentId}-01` } })
          .withResponse();
        assert.equal(response.headers.get('x-gateway-cache'), i === 0 ? 'miss' : 'hit');
      }
    } finally {
      await gw.shutdown(); // flushes the batch
      await upstream.close();
    }
    const [miss, hit] = ids.map((id) => inTrace(id)(receiver.spans()));
    await receiver.close();
    assert.deepEqual([serverSpan(miss)!.attrs['aigw.cache'], attemptSpans(miss).length], ['miss', 1]);
    assert.deepEqual([serverSpan(hit)!.attrs['aigw.cache'], serverSpan(hit)!.attrs['aigw.provider'], attemptSpans(hit).length], ['hit', 'cache', 0]);
    assert.equal(serverSpan(hit)!.attrs['gen_ai.usage.input_tokens'], 10);
    assert.ok(receiver.payloads.every((p) => p.path === '/v1/traces'));
  });
});
