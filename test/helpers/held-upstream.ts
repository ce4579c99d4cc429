/**
 * An OpenAI-compatible chat provider that holds every request until the test lets it go: then
 * it answers a chat.completion whose usage is the request's max tokens (max_tokens or
 * max_completion_tokens; `defaultOutputTokens` without one), or fails it with a status. For
 * tests of what is reserved while requests are in flight, without timing assumptions.
 */
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HeldRequest {
  body: Record<string, unknown>;
  res: ServerResponse;
}

export interface HeldUpstream {
  url: string;
  /** Requests received and not yet answered. */
  held: HeldRequest[];
  /** Requests received in all. */
  received: number;
  /** Answers every held request with usage = its max tokens (prompt_tokens: `promptTokens`). */
  answerAll(): void;
  /** Fails every held request with this status (an OpenAI-shaped error body). */
  failAll(status: number): void;
  close(): Promise<void>;
}

const readBody = (req: IncomingMessage): Promise<Record<string, unknown>> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>));
    req.on('error', reject);
  });

function answer(h: HeldRequest, promptTokens: number, defaultOutputTokens: number): void {
  const completion = Number(h.body.max_tokens ?? h.body.max_completion_tokens ?? defaultOutputTokens);
  const body = {
    id: 'chatcmpl-held',
    object: 'chat.completion',
    created: 1700000000,
    model: String(h.body.model),
    choices: [{ index: 0, message: { role: 'assistant', content: 'done' }, finish_reason: 'length' }],
    usage: { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion },
  };
  h.res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

export async function startHeldUpstream(opts: { promptTokens?: number; defaultOutputTokens?: number } = {}): Promise<HeldUpstream> {
  const promptTokens = opts.promptTokens ?? 0;
  const defaultOutputTokens = opts.defaultOutputTokens ?? 10;
  const state: HeldUpstream = {
    url: '',
    held: [],
    received: 0,
    answerAll() {
      for (const h of state.held.splice(0)) answer(h, promptTokens, defaultOutputTokens);
    },
    failAll(status) {
      for (const h of state.held.splice(0))
        h.res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'scripted failure', type: 'server_error', code: null } }));
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server = createServer((req, res) => {
    void readBody(req).then((body) => {
      state.received++;
      state.held.push({ body, res });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  const close = state.close;
  state.close = () => {
    server.closeAllConnections();
    return close();
  };
  return state;
}
