/**
 * CPU cost of one oversized upstream SSE event (issue 22, item 5): a provider opens a stream
 * with one good event, then sends an event of N MB without its terminating blank line, in
 * 64 KiB writes, and closes. Prints the gateway process's CPU time (user + system, which
 * includes this script's own small fake provider) and the wall time until the client has the
 * whole answer, for an openai-type provider (relayed by upstream/sse-relay.ts) and an
 * anthropic-type one (translated by providers/sse-translate.ts).
 *
 *   npx tsx bench/sse-event-cpu.ts [sizesMB...]     (default: 16 40)
 *
 * A figure for a report, not a test: nothing here asserts a time.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { parseConfig } from '../service/config/schema';
import { startGateway } from '../service/server';

const CHUNK = 64 * 1024;

async function provider(sizeBytes: number) {
  const server = createServer(async (req, res) => {
    for await (const _ of req) void _;
    const anthropic = req.url?.includes('/messages');
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const first = anthropic
      ? `event: message_start\ndata: ${JSON.stringify({ type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'm', content: [], usage: { input_tokens: 5, output_tokens: 1 } } })}\n\n`
      : `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content: 'hi' }, finish_reason: null }] })}\n\n`;
    res.write(first);
    res.write(anthropic ? 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"' : 'data: {"choices":[{"index":0,"delta":{"content":"');
    const block = Buffer.alloc(CHUNK, 0x61);
    for (let sent = 0; sent < sizeBytes && !res.destroyed; sent += CHUNK) {
      if (!res.write(block)) await new Promise((r) => res.once('drain', r));
    }
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function main(): Promise<void> {
  const sizes = (process.argv.slice(2).length ? process.argv.slice(2) : ['16', '40']).map(Number);
  for (const mb of sizes) {
    const up = await provider(mb * 1024 * 1024);
    const config = parseConfig({
      server: { host: '127.0.0.1', port: 0, metrics_port: 0, log_level: 'silent' },
      auth: { mode: 'none' },
      routing: { max_retries: 0, timeout_ms: 600_000 },
      providers: [
        { name: 'o', type: 'openai', base_url: `${up.url}/v1`, api_key: 'sk-o', timeout_ms: 600_000, models: [{ name: 'via-openai', input_per_million: 1, output_per_million: 1 }] },
        { name: 'a', type: 'anthropic', base_url: up.url, api_key: 'sk-a', timeout_ms: 600_000, models: [{ name: 'via-anthropic', input_per_million: 1, output_per_million: 1 }] },
      ],
    });
    const gw = await startGateway(config, { logger: pino({ level: 'silent' }) });
    for (const model of ['via-openai', 'via-anthropic']) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'x' }] }),
      });
      const text = await res.text();
      const cpu = process.cpuUsage(cpu0);
      const tail = text.slice(-160).replace(/\n/g, '\\n');
      console.log(
        `${mb} MB event, ${model}: CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s, wall ${((performance.now() - t0) / 1000).toFixed(2)} s, status ${res.status}, ${text.length} bytes to client, ends: ${tail}`,
      );
    }
    await gw.shutdown();
    up.server.close();
  }
}

void main();
