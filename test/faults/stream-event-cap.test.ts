/**
 * Issue 22, item 5: one upstream stream event (or Bedrock event-stream frame) over the
 * documented cap (MAX_EVENT_CHARS, 4 MiB) ends the attempt cleanly. Before the first byte
 * reached the client, the executor fails over to the next provider; after, the stream ends
 * with its OpenAI-shaped error event, and the gateway stops reading the provider (it does not
 * buffer the rest). For an openai-type provider (relayed), an anthropic-type one (SSE
 * translated) and a bedrock-type one (binary frames, the frame's declared length is refused
 * from its prelude). The scripted provider sends 24 MiB without a terminator.
 */
import assert from 'node:assert/strict';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { MAX_EVENT_CHARS } from '../../service/core/sse';
import { FAKE_AWS } from '../helpers/fake-bedrock';
import { startFakeUpstream, FakeUpstream } from '../helpers/fake-upstream';
import { startTestGateway, TestGateway } from '../helpers/gateway';
import { chatBody, parseSse, post, waitFor } from './helpers';

const HUGE = 6 * MAX_EVENT_CHARS; // more than the gateway reads (the cap) plus what loopback socket buffers can hold
const CHUNK = 64 * 1024;
const codec = new EventStreamCodec(toUtf8, fromUtf8);
const frame = (type: string, payload: unknown) =>
  Buffer.from(
    codec.encode({
      headers: { ':event-type': { type: 'string', value: type }, ':message-type': { type: 'string', value: 'event' }, ':content-type': { type: 'string', value: 'application/json' } },
      body: fromUtf8(JSON.stringify(payload)),
    }),
  );

const chunk = (text: string) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'x', choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })}\n\n`;
const anthropicStart = () =>
  `event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'x', content: [], usage: { input_tokens: 5, output_tokens: 1 } } })}\n\n` +
  `event: content_block_start\ndata: ${JSON.stringify({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } })}\n\n`;
const anthropicDelta = (text: string) => `event: content_block_delta\ndata: ${JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } })}\n\n`;

interface Scripted {
  server: Server;
  url: string;
  /** Streams the provider was still writing when the gateway closed them. */
  cutShort: number;
  bytesSent: number;
}

const drainOrClose = (res: ServerResponse) =>
  new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.on('drain', done).on('close', done);
  });

/** Writes `head`, then `HUGE` bytes of `fill` in 64 KiB writes (stopping when the gateway hangs up), then ends. */
async function sendHuge(s: Scripted, res: ServerResponse, contentType: string, head: Buffer | string, fill: Buffer | string): Promise<void> {
  res.writeHead(200, { 'content-type': contentType });
  res.write(head);
  const block = Buffer.alloc(CHUNK, 0x61);
  let finished = false;
  res.on('close', () => {
    if (!finished) s.cutShort++;
  });
  res.write(fill);
  for (let sent = 0; sent < HUGE && !res.destroyed; sent += CHUNK) {
    s.bytesSent += CHUNK;
    if (!res.write(block)) await drainOrClose(res);
  }
  finished = !res.destroyed;
  res.end();
}

async function startScripted(): Promise<Scripted> {
  const s: Scripted = { server: undefined as unknown as Server, url: '', cutShort: 0, bytesSent: 0 };
  s.server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    for await (const c of req) raw += c;
    const path = req.url ?? '';
    if (path.includes('/converse-stream')) {
      const head = path.includes('br-mid')
        ? Buffer.concat([frame('messageStart', { role: 'assistant' }), frame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'hi' } })])
        : Buffer.alloc(0);
      const prelude = Buffer.alloc(12);
      prelude.writeUInt32BE(HUGE + 16, 0); // a frame declaring 24 MiB
      return sendHuge(s, res, 'application/vnd.amazon.eventstream', head, prelude);
    }
    const model = String((JSON.parse(raw || '{}') as { model?: string }).model);
    if (path.endsWith('/messages'))
      return sendHuge(
        s,
        res,
        'text/event-stream',
        model === 'anth-mid' ? anthropicStart() + anthropicDelta('hi') : '',
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"',
      );
    return sendHuge(s, res, 'text/event-stream', model === 'mid' ? chunk('hi') : '', 'data: {"choices":[{"index":0,"delta":{"content":"');
  });
  await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', () => r()));
  s.url = `http://127.0.0.1:${(s.server.address() as AddressInfo).port}`;
  return s;
}

describe('issue 22 item 5: one stream event or frame over 4 MiB ends the attempt cleanly', function () {
  this.timeout(60_000);
  let up: Scripted;
  let fallback: FakeUpstream;
  let gw: TestGateway;
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };

  before(async () => {
    process.env.AWS_ACCESS_KEY_ID = FAKE_AWS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = FAKE_AWS.secretAccessKey;
    up = await startScripted();
    fallback = await startFakeUpstream('fallback');
    const m = (name: string, upstream_name?: string) => ({ name, upstream_name, input_per_million: 1, output_per_million: 2 });
    gw = await startTestGateway({
      auth: { mode: 'none' },
      routing: { strategy: 'priority', max_retries: 0, circuit_breaker: { consecutive_failures: 100 } },
      providers: [
        { name: 'big', type: 'openai', base_url: `${up.url}/v1`, api_key: 'sk-big', priority: 1, timeout_ms: 20_000, models: [m('mid'), m('first')] },
        { name: 'anth', type: 'anthropic', base_url: up.url, api_key: 'sk-anth', priority: 1, timeout_ms: 20_000, models: [m('anth-mid'), m('anth-first')] },
        { name: 'br', type: 'bedrock', base_url: up.url, region: 'us-east-1', priority: 1, timeout_ms: 20_000, models: [m('br-mid', 'br-mid'), m('br-first', 'br-first')] },
        { name: 'fallback', type: 'openai', base_url: fallback.url, api_key: 'sk-fb', priority: 2, timeout_ms: 5000, models: [m('first'), m('anth-first'), m('br-first')] },
      ],
    });
  });
  after(async () => {
    await gw?.shutdown();
    await fallback?.close();
    up?.server.closeAllConnections();
    await new Promise<void>((r) => up?.server.close(() => r()));
    for (const [k, v] of [
      ['AWS_ACCESS_KEY_ID', saved.id],
      ['AWS_SECRET_ACCESS_KEY', saved.secret],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  for (const model of ['mid', 'anth-mid', 'br-mid']) {
    it(`${model}: after the first bytes went out, the stream ends with the OpenAI error event and the provider is hung up on`, async () => {
      const cut = up.cutShort;
      const sentBefore = up.bytesSent;
      const r = await post(gw.url, '/v1/chat/completions', chatBody(model, { stream: true }));
      assert.equal(r.status, 200, r.text.slice(0, 300));
      const sse = parseSse(r.text);
      assert.equal(sse.content, 'hi');
      assert.equal(sse.done, false);
      assert.ok(sse.error, `an error event ends the stream: ${r.text.slice(-300)}`);
      assert.ok(r.text.length < MAX_EVENT_CHARS, 'nothing of the oversized event reached the client');
      await waitFor(() => up.cutShort === cut + 1, 'the gateway to stop reading the provider (it hangs up before the 24 MiB are sent)');
      assert.ok(up.bytesSent - sentBefore < HUGE, `the provider was cut off after ${up.bytesSent - sentBefore} bytes`);
    });
  }

  for (const model of ['first', 'anth-first', 'br-first']) {
    it(`${model}: an oversized first event or frame fails over before any byte is sent: the client gets the fallback's whole answer`, async () => {
      const sentBefore = up.bytesSent;
      const r = await post(gw.url, '/v1/chat/completions', chatBody(model, { stream: true }));
      assert.equal(r.status, 200, r.text.slice(0, 300));
      assert.equal(r.headers.get('x-gateway-provider'), 'fallback');
      const sse = parseSse(r.text);
      assert.equal(sse.content, 'Hello from the fake upstream.');
      assert.equal(sse.done, true);
      assert.equal(sse.error, undefined);
      assert.ok(up.bytesSent - sentBefore < HUGE, `the oversized provider was hung up on after ${up.bytesSent - sentBefore} bytes, not read to its end`);
    });
  }
});
