/**
 * A small Bedrock runtime on 127.0.0.1, shaped from the Converse / ConverseStream API
 * reference: POST /model/{modelId}/converse answers {output: {message}, stopReason, usage,
 * metrics}; /converse-stream answers AWS event-stream frames (application/vnd.amazon.eventstream)
 * with :event-type messageStart, contentBlockStart, contentBlockDelta, contentBlockStop,
 * messageStop, metadata, or an :exception-type frame. It checks each call's SigV4 signature by
 * signing the same request again with the credentials it knows (403 when they differ).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Sha256 } from '@aws-crypto/sha256-js';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { SignatureV4 } from '@smithy/signature-v4';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { listenLoopback } from './loopback';

export const FAKE_AWS = { accessKeyId: 'AKIAFAKEGATEWAYTEST', secretAccessKey: 'fake-secret-access-key-for-tests', region: 'us-east-1' };

export type BedrockBehavior = { kind: 'answer'; cacheRead?: number } | { kind: 'error'; status: number; type: string } | { kind: 'stream-exception'; type: string };

export interface BedrockReceived {
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, any>;
}

export interface FakeBedrock {
  url: string;
  received: BedrockReceived[];
  setBehavior(fn: (req: BedrockReceived) => BedrockBehavior): void;
  close(): Promise<void>;
}

const codec = new EventStreamCodec(toUtf8, fromUtf8);
const frame = (headers: Record<string, string>, payload: unknown) =>
  codec.encode({ headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, { type: 'string' as const, value: v }])), body: fromUtf8(JSON.stringify(payload)) });
const event = (type: string, payload: unknown) => frame({ ':event-type': type, ':message-type': 'event', ':content-type': 'application/json' }, payload);

/** Whether the request's Authorization is the SigV4 signature of this request with FAKE_AWS's credentials. */
async function signatureValid(req: IncomingMessage, raw: string): Promise<boolean> {
  const auth = String(req.headers.authorization ?? '');
  const date = String(req.headers['x-amz-date'] ?? '');
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/\d{8}\/([^/]+)\/bedrock\/aws4_request, SignedHeaders=([^,]+), Signature=[0-9a-f]{64}$/.exec(auth);
  if (!m || m[1] !== FAKE_AWS.accessKeyId || m[2] !== FAKE_AWS.region || !/^\d{8}T\d{6}Z$/.test(date)) return false;
  const headers: Record<string, string> = {};
  for (const h of m[3].split(';')) headers[h] = String(req.headers[h] ?? '');
  const signer = new SignatureV4({ service: 'bedrock', region: FAKE_AWS.region, sha256: Sha256, credentials: FAKE_AWS });
  const when = new Date(`${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`);
  const again = await signer.sign({ method: 'POST', protocol: 'http:', hostname: '127.0.0.1', path: req.url!, headers, body: raw }, { signingDate: when });
  return again.headers.authorization === auth;
}

function answerBlocks(body: Record<string, any>): any[] {
  const last = body.messages[body.messages.length - 1];
  const results = last.content.filter((b: any) => b.toolResult);
  if (body.toolConfig?.tools?.length && !results.length) return [{ toolUse: { toolUseId: 'tooluse_1', name: body.toolConfig.tools[0].toolSpec.name, input: { city: 'Paris' } } }];
  return [{ text: 'Hello from Bedrock.' + results.map((r: any) => ` [${r.toolResult.toolUseId}: ${r.toolResult.content[0].text}]`).join('') }];
}

async function respond(req: BedrockReceived, res: ServerResponse, b: BedrockBehavior): Promise<void> {
  if (b.kind === 'error') {
    res
      .writeHead(b.status, { 'content-type': 'application/json', 'x-amzn-errortype': `${b.type}:http://internal.amazon.com/coral/com.amazon.bedrock/` })
      .end(JSON.stringify({ message: `fake says ${b.type}` }));
    return;
  }
  const blocks = answerBlocks(req.body);
  const stopReason = blocks[0].toolUse ? 'tool_use' : 'end_turn';
  const usage = { inputTokens: 12, outputTokens: 6, totalTokens: 18, ...(b.kind === 'answer' && b.cacheRead ? { cacheReadInputTokens: b.cacheRead } : {}) };
  if (!req.path.endsWith('/converse-stream')) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ output: { message: { role: 'assistant', content: blocks } }, stopReason, usage, metrics: { latencyMs: 5 } }));
    return;
  }
  res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
  const frames = [event('messageStart', { role: 'assistant' })];
  if (b.kind === 'stream-exception') frames.push(frame({ ':message-type': 'exception', ':exception-type': b.type, ':content-type': 'application/json' }, { message: 'slow down' }));
  else if (blocks[0].toolUse) {
    const t = blocks[0].toolUse;
    frames.push(event('contentBlockStart', { contentBlockIndex: 0, start: { toolUse: { toolUseId: t.toolUseId, name: t.name } } }));
    for (const part of ['{"city"', ':"Paris"}']) frames.push(event('contentBlockDelta', { contentBlockIndex: 0, delta: { toolUse: { input: part } } }));
    frames.push(event('contentBlockStop', { contentBlockIndex: 0 }));
  } else {
    for (const text of ['Hello', ' from', ' Bedrock.']) frames.push(event('contentBlockDelta', { contentBlockIndex: 0, delta: { text } }));
    frames.push(event('contentBlockStop', { contentBlockIndex: 0 }));
  }
  if (b.kind !== 'stream-exception') frames.push(event('messageStop', { stopReason }), event('metadata', { usage, metrics: { latencyMs: 5 } }));
  for (const f of frames) {
    if (res.destroyed) return;
    res.write(f);
    await new Promise((r) => setTimeout(r, 2));
  }
  res.end();
}

export async function startFakeBedrock(): Promise<FakeBedrock> {
  let behavior = (_req: BedrockReceived): BedrockBehavior => ({ kind: 'answer' });
  const state: FakeBedrock = {
    url: '',
    received: [],
    setBehavior: (fn) => void (behavior = fn),
    close: async () => undefined,
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    if (req.method !== 'POST' || !/^\/model\/[^/]+\/converse(-stream)?$/.test(req.url ?? ''))
      return void res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'not found' }));
    if (!(await signatureValid(req, raw)))
      return void res
        .writeHead(403, { 'content-type': 'application/json', 'x-amzn-errortype': 'InvalidSignatureException' })
        .end(JSON.stringify({ message: 'The request signature we calculated does not match the signature you provided.' }));
    const received = { path: req.url!, headers: req.headers, body: JSON.parse(raw) };
    state.received.push(received);
    await respond(received, res, behavior(received));
  };
  const server = await listenLoopback(handle);
  state.url = server.origin;
  state.close = server.close;
  return state;
}
