/**
 * A small OpenAI-compatible upstream on 127.0.0.1 that tests script: answer, stream,
 * fail with a status, hang, reset, send invalid JSON, cut a stream, drip slowly.
 * It records what it received and which requests the gateway aborted.
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { backgroundResponse, passthroughCall, responseEvents, responseObject, StoredResponse, storedResponseCall } from './fake-responses';
import { freePort } from './ports';

export type Behavior =
  | { kind: 'ok'; content?: string; usage?: boolean; delayMs?: number }
  | {
      kind: 'stream';
      chunks?: string[];
      delayMs?: number;
      usage?: boolean;
      cutAfter?: number;
      invalidAt?: number;
      firstByteDelayMs?: number;
      /** Headers at once, the first event after this long. */ firstEventDelayMs?: number;
      /** End after the chunks without a finish_reason, a usage chunk or [DONE] (a truncated stream that closes cleanly). */ noEnd?: boolean;
      /** Go silent (for a minute) before chunk `stallAfter`. */ stallAfter?: number;
    }
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string> }
  | { kind: 'hang' }
  | { kind: 'reset' }
  | { kind: 'invalid-json' }
  | { kind: 'huge'; bytes: number }
  | { kind: 'empty-stream' }
  /** Chat: calls the request's first tool with `args` (JSON text), as a chat.completion or as chunks. */
  | { kind: 'tool-call'; args: string };

export interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

export interface FakeUpstream {
  url: string;
  name: string;
  received: Received[];
  /** Requests whose connection closed before the response finished. */
  aborted: number;
  /** Responses completed. */
  completed: number;
  /** Responses API objects this provider stored (POST /responses), by id. */
  responses: Map<string, StoredResponse>;
  /** Files uploaded to this provider, by id. */
  files: Map<string, Record<string, unknown>>;
  setBehavior(fn: (req: Received, n: number) => Behavior): void;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits for 'drain' or 'close', removing both listeners after (no listener pile-up over a long body). */
const drainOrClose = (res: ServerResponse) =>
  new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.on('drain', done).on('close', done);
  });

export const DEFAULT_CHUNKS = ['Hello', ' from', ' the', ' fake', ' upstream', '.'];

function completionBody(name: string, req: Received, content: string, usage: boolean) {
  const model = String(req.body.model);
  if (req.path.endsWith('/embeddings')) {
    const inputs = Array.isArray(req.body.input) ? req.body.input : [req.body.input];
    return {
      object: 'list',
      model,
      data: inputs.map((_x, index) => ({ object: 'embedding', index, embedding: [0.1, 0.2, 0.3] })),
      ...(usage ? { usage: { prompt_tokens: 4 * inputs.length, total_tokens: 4 * inputs.length } } : {}),
    };
  }
  const isChat = req.path.endsWith('/chat/completions');
  return {
    id: `${isChat ? 'chatcmpl' : 'cmpl'}-${name}`,
    object: isChat ? 'chat.completion' : 'text_completion',
    created: 1700000000,
    model,
    choices: [isChat ? { index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' } : { index: 0, text: content, finish_reason: 'stop' }],
    ...(usage ? { usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 } } : {}),
  };
}

function chunkEvent(name: string, req: Received, text: string, finish: string | null) {
  const isChat = req.path.endsWith('/chat/completions');
  return {
    id: `${isChat ? 'chatcmpl' : 'cmpl'}-${name}`,
    object: isChat ? 'chat.completion.chunk' : 'text_completion',
    created: 1700000000,
    model: String(req.body.model),
    choices: [isChat ? { index: 0, delta: finish ? {} : { content: text }, finish_reason: finish } : { index: 0, text, finish_reason: finish }],
  };
}

export async function startFakeUpstream(name = 'fake', initial?: (req: Received, n: number) => Behavior): Promise<FakeUpstream> {
  let behavior = initial ?? ((req: Received): Behavior => (req.body.stream ? { kind: 'stream' } : { kind: 'ok' }));
  const sockets = new Set<Socket>();
  const state: FakeUpstream = {
    url: '',
    name,
    received: [],
    aborted: 0,
    completed: 0,
    responses: new Map(),
    files: new Map(),
    setBehavior: (fn) => {
      behavior = fn;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      /* tests may send anything */
    }
    const received: Received = { method: req.method ?? 'GET', path: req.url ?? '', headers: req.headers, body };
    state.received.push(received);
    let finished = false;
    res.on('finish', () => {
      finished = true;
      state.completed++;
    });
    res.on('close', () => {
      if (!finished) state.aborted++;
    });
    const b = behavior(received, state.received.length);
    switch (b.kind) {
      case 'ok': {
        if (b.delayMs) await sleep(b.delayMs);
        const other = otherCall(state, received, b.content ?? `Hello from ${name}`, b.usage !== false, Buffer.concat(chunks).length);
        if (other) {
          res.writeHead(other.status, { 'content-type': other.contentType ?? 'application/json' }).end(typeof other.body === 'string' ? other.body : JSON.stringify(other.body));
          return;
        }
        const payload = completionBody(name, received, b.content ?? `Hello from ${name}`, b.usage !== false);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
        return;
      }
      case 'status':
        res
          .writeHead(b.status, { 'content-type': 'application/json', ...b.headers })
          .end(JSON.stringify(b.body ?? { error: { message: `fake ${name} says ${b.status}`, type: 'server_error', code: null } }));
        return;
      case 'hang':
        return; // never answers; the gateway must time out
      case 'reset':
        req.socket.destroy();
        return;
      case 'invalid-json':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"id": "broken", "choices": [');
        return;
      case 'huge': {
        res.writeHead(200, { 'content-type': 'application/json' });
        const block = Buffer.alloc(64 * 1024, 0x20);
        for (let sent = 0; sent < b.bytes && !res.destroyed; sent += block.length) {
          if (!res.write(block)) await drainOrClose(res);
        }
        res.end();
        return;
      }
      case 'empty-stream':
        res.writeHead(200, { 'content-type': 'text/event-stream' }).end();
        return;
      case 'tool-call':
        return toolCall(name, received, res, b.args);
      case 'stream': {
        if (b.firstByteDelayMs) await sleep(b.firstByteDelayMs);
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        if (b.firstEventDelayMs) {
          res.flushHeaders();
          await sleep(b.firstEventDelayMs);
        }
        const texts = b.chunks ?? DEFAULT_CHUNKS;
        if (received.path.split('?')[0].endsWith('/responses')) return streamResponse(state, req, res, received, texts, b);
        for (let i = 0; i < texts.length; i++) {
          if (res.destroyed) return;
          if (b.cutAfter !== undefined && i === b.cutAfter) {
            req.socket.destroy();
            return;
          }
          if (b.stallAfter === i) await sleep(60_000);
          if (res.destroyed) return;
          if (b.invalidAt === i) res.write('data: {"not json\n\n');
          else res.write(`data: ${JSON.stringify(chunkEvent(name, received, texts[i], null))}\n\n`);
          if (b.delayMs) await sleep(b.delayMs);
        }
        if (res.destroyed) return;
        if (b.noEnd) return void res.end();
        res.write(`data: ${JSON.stringify(chunkEvent(name, received, '', 'stop'))}\n\n`);
        const opts = body.stream_options as { include_usage?: boolean } | undefined;
        if (b.usage !== false && opts?.include_usage) {
          res.write(
            `data: ${JSON.stringify({ id: `chatcmpl-${name}`, object: 'chat.completion.chunk', created: 1700000000, model: String(body.model), choices: [], usage: { prompt_tokens: 10, completion_tokens: texts.length, total_tokens: 10 + texts.length } })}\n\n`,
          );
        }
        res.end('data: [DONE]\n\n');
        return;
      }
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return state;
}

const INFERENCE = /\/(chat\/completions|completions|embeddings)$/;

/** Responses API calls and pass-through paths answered by 'ok'; undefined for chat, completions and embeddings. */
function otherCall(state: FakeUpstream, req: Received, text: string, usage: boolean, rawBytes: number): { status: number; body: unknown; contentType?: string } | undefined {
  const path = req.path.split('?')[0];
  if (INFERENCE.test(path)) return undefined;
  if (path.endsWith('/responses') && req.method === 'POST') {
    const id = `resp_${state.name}_${state.received.length}`;
    if (req.body.background === true) {
      const stored = backgroundResponse(id, String(req.body.model), text, req.body.input);
      state.responses.set(id, stored);
      return { status: 200, body: stored.response };
    }
    const response = responseObject(id, String(req.body.model), text, 'completed', usage);
    if (req.body.store !== false) state.responses.set(id, { response, input: req.body.input });
    return { status: 200, body: response };
  }
  if (path.includes('/responses/')) return storedResponseCall(req.method, path, state.responses);
  return passthroughCall(req.method, path, req.body, state.files, rawBytes);
}

/** A Responses API stream: typed events with pauses; `cutAfter` counts events, `invalidAt` replaces one. */
async function streamResponse(state: FakeUpstream, req: IncomingMessage, res: ServerResponse, received: Received, texts: string[], b: Extract<Behavior, { kind: 'stream' }>): Promise<void> {
  const id = `resp_${state.name}_${state.received.length}`;
  const events = responseEvents(id, String(received.body.model), texts, b.usage !== false);
  for (let i = 0; i < events.length; i++) {
    if (res.destroyed) return;
    if (b.cutAfter !== undefined && i === b.cutAfter) {
      req.socket.destroy();
      return;
    }
    res.write(b.invalidAt === i ? 'event: response.output_text.delta\ndata: {"not json\n\n' : events[i]);
    if (b.delayMs) await sleep(b.delayMs);
  }
  if (received.body.store !== false) state.responses.set(id, { response: JSON.parse(events[events.length - 1].split('data: ')[1]).response, input: received.body.input });
  res.end();
}

/** A chat answer calling the request's first tool: one chat.completion, or chunks (id and name, then the arguments in two pieces). */
function toolCall(name: string, req: Received, res: ServerResponse, args: string): void {
  const fn = (req.body.tools as Array<{ function: { name: string } }>)[0].function.name;
  const base = { id: `chatcmpl-${name}`, created: 1700000000, model: String(req.body.model) };
  const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
  if (!req.body.stream) {
    const message = { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: fn, arguments: args } }] };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...base, object: 'chat.completion', choices: [{ index: 0, message, finish_reason: 'tool_calls' }], usage }));
    return;
  }
  const chunk = (delta: unknown, finish: string | null = null) => `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write(chunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: fn, arguments: '' } }] }));
  for (const part of [args.slice(0, 5), args.slice(5)]) res.write(chunk({ tool_calls: [{ index: 0, function: { arguments: part } }] }));
  res.write(chunk({}, 'tool_calls'));
  res.end(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [], usage })}\n\ndata: [DONE]\n\n`);
}

/** A URL whose port has nothing listening: connections are refused. */
export async function refusedUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}/v1`;
}
