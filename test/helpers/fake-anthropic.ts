/**
 * A small Anthropic Messages API on 127.0.0.1, shaped from Anthropic's API reference:
 * POST /v1/messages with x-api-key and anthropic-version headers, a `message` object as the
 * answer, the stream as named SSE events (message_start, content_block_start, ping,
 * content_block_delta with text_delta / input_json_delta, content_block_stop, message_delta
 * with stop_reason and usage, message_stop), errors as {"type":"error","error":{type,message}}.
 * With tools in the request and no tool_result in its last message, it calls the first tool;
 * otherwise it answers text (echoing the tool results it was given).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { listenLoopback } from './loopback';

export type AnthropicBehavior =
  | { kind: 'answer'; text?: string[]; cacheRead?: number; stopReason?: string; /** Pause between stream events (default 2 ms). */ delayMs?: number }
  | { kind: 'error'; status: number; type: string; message?: string }
  /** A 200 stream whose events stop with an `error` event after `after` text deltas. */
  | { kind: 'stream-error'; type: string; after: number };

export interface AnthropicReceived {
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, any>;
}

export interface FakeAnthropic {
  /** The base URL, as Anthropic's SDK takes it (no /v1). */
  url: string;
  apiKey: string;
  received: AnthropicReceived[];
  setBehavior(fn: (req: AnthropicReceived, n: number) => AnthropicBehavior): void;
  close(): Promise<void>;
}

const USAGE = { input_tokens: 21, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };

function errorBody(type: string, message: string) {
  return JSON.stringify({ type: 'error', error: { type, message } });
}

/** The content blocks of the answer: a tool_use of the first tool, or text. */
function blocksFor(req: AnthropicReceived, text: string[]): Array<Record<string, unknown>> {
  const messages = req.body.messages as Array<{ role: string; content: Array<Record<string, any>> | string }>;
  const last = messages[messages.length - 1];
  const results = Array.isArray(last?.content) ? last.content.filter((b) => b.type === 'tool_result') : [];
  const tools = req.body.tools as Array<{ name: string }> | undefined;
  if (tools?.length && !results.length) return [{ type: 'tool_use', id: 'toolu_01A', name: tools[0].name, input: { city: 'Paris', unit: 'c' } }];
  const echo = results.map((r) => ` [${r.tool_use_id}: ${typeof r.content === 'string' ? r.content : JSON.stringify(r.content)}]`).join('');
  return [{ type: 'text', text: text.join('') + echo }];
}

function message(req: AnthropicReceived, b: Extract<AnthropicBehavior, { kind: 'answer' }>, text: string[]) {
  const content = blocksFor(req, text);
  const stop = b.stopReason ?? (content[0].type === 'tool_use' ? 'tool_use' : 'end_turn');
  return {
    id: 'msg_fake01',
    type: 'message',
    role: 'assistant',
    model: req.body.model,
    content,
    stop_reason: stop,
    stop_sequence: null,
    usage: { ...USAGE, cache_read_input_tokens: b.cacheRead ?? 0, output_tokens: 7 },
  };
}

const sse = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

/** The stream events of a message, as Anthropic sends them. */
function streamEvents(msg: ReturnType<typeof message>, text: string[], errorAfter?: { type: string; after: number }): string[] {
  const out = [sse('message_start', { message: { ...msg, content: [], stop_reason: null, usage: { ...msg.usage, output_tokens: 1 } } }), sse('ping', {})];
  msg.content.forEach((block, index) => {
    if (block.type === 'text') {
      out.push(sse('content_block_start', { index, content_block: { type: 'text', text: '' } }));
      const parts = [...text, String(block.text).slice(text.join('').length)].filter(Boolean);
      parts.forEach((t, i) => {
        if (errorAfter && i === errorAfter.after) out.push(sse('error', { error: { type: errorAfter.type, message: 'Overloaded' } }));
        out.push(sse('content_block_delta', { index, delta: { type: 'text_delta', text: t } }));
      });
    } else {
      out.push(sse('content_block_start', { index, content_block: { type: 'tool_use', id: block.id, name: block.name, input: {} } }));
      const json = JSON.stringify(block.input);
      for (const part of [json.slice(0, 9), json.slice(9)]) out.push(sse('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: part } }));
    }
    out.push(sse('content_block_stop', { index }));
  });
  out.push(sse('message_delta', { delta: { stop_reason: msg.stop_reason, stop_sequence: null }, usage: { output_tokens: msg.usage.output_tokens } }));
  out.push(sse('message_stop', {}));
  return out;
}

async function answer(req: AnthropicReceived, res: ServerResponse, b: AnthropicBehavior): Promise<void> {
  if (b.kind === 'error') {
    res.writeHead(b.status, { 'content-type': 'application/json' }).end(errorBody(b.type, b.message ?? `fake says ${b.type}`));
    return;
  }
  const text = b.kind === 'answer' ? (b.text ?? ['Hello', ' from', ' Claude', '.']) : ['Hello', ' from', ' Claude', '.'];
  const msg = message(req, b.kind === 'answer' ? b : { kind: 'answer' }, text);
  if (!req.body.stream) {
    res.writeHead(200, { 'content-type': 'application/json', 'request-id': 'req_fake' }).end(JSON.stringify(msg));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const events = streamEvents(msg, text, b.kind === 'stream-error' ? b : undefined);
  for (const e of events) {
    if (res.destroyed) return;
    res.write(e);
    if (e.startsWith('event: error')) return void res.end();
    await new Promise((r) => setTimeout(r, b.kind === 'answer' ? (b.delayMs ?? 2) : 2));
  }
  res.end();
}

export async function startFakeAnthropic(initial?: (req: AnthropicReceived, n: number) => AnthropicBehavior): Promise<FakeAnthropic> {
  let behavior = initial ?? ((): AnthropicBehavior => ({ kind: 'answer' }));
  const state: FakeAnthropic = {
    url: '',
    apiKey: 'sk-ant-fake-provider-key',
    received: [],
    setBehavior: (fn) => void (behavior = fn),
    close: async () => undefined,
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.method !== 'POST' || req.url !== '/v1/messages') return void res.writeHead(404, { 'content-type': 'application/json' }).end(errorBody('not_found_error', 'Not found'));
    if (req.headers['x-api-key'] !== state.apiKey) return void res.writeHead(401, { 'content-type': 'application/json' }).end(errorBody('authentication_error', 'invalid x-api-key'));
    if (req.headers['anthropic-version'] !== '2023-06-01')
      return void res.writeHead(400, { 'content-type': 'application/json' }).end(errorBody('invalid_request_error', 'anthropic-version header is required'));
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, any>;
    if (typeof body.max_tokens !== 'number') return void res.writeHead(400, { 'content-type': 'application/json' }).end(errorBody('invalid_request_error', 'max_tokens: Field required'));
    const received = { path: req.url, headers: req.headers, body };
    state.received.push(received);
    await answer(received, res, behavior(received, state.received.length));
  };
  const server = await listenLoopback(handle);
  state.url = server.origin;
  state.close = server.close;
  return state;
}
