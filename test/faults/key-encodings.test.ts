/**
 * Issue 22, item 4: a provider key never reaches a client, whatever encoding the provider
 * echoes it in. A scripted provider answers errors that echo the gateway's provider key raw,
 * JSON-escaped (every "-" as \u002d, every letter as \u00XX), base64 (a Basic authorization
 * header dump, at each of the three byte alignments) and in non-JSON bodies (text/plain
 * header dumps, an HTML page, a body labelled JSON that is not); on the pass-through
 * (/v1/moderations) and on inference (/v1/chat/completions, relayed 4xx). Every answer is in
 * the OpenAI error shape with the provider's status, and contains no form of the key.
 */
import assert from 'node:assert/strict';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hashKey } from '../../service/tenancy/keys';
import { startTestGateway, TestGateway } from '../helpers/gateway';
import { assertOpenAIError, chatBody, post } from './helpers';

const PROVIDER_KEY = 'sk-proj-Ab3-xYz9-QrSt-0123456789-secret';
const CLIENT = 'sk-gw-enc-client';

const escapeAll = (s: string) => [...s].map((ch) => (/[a-z-]/.test(ch) ? `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}` : ch)).join('');
const basic = (prefix: string) => Buffer.from(`${prefix}${PROVIDER_KEY}`).toString('base64');

/** Each case: the provider's status, content type and raw body text. */
const CASES: Record<string, { status: number; type: string; body: string }> = {
  raw: { status: 400, type: 'application/json', body: JSON.stringify({ error: { message: `Incorrect API key provided: ${PROVIDER_KEY}`, type: 'invalid_request_error', code: 'invalid_api_key' } }) },
  escaped: { status: 400, type: 'application/json', body: `{"error":{"message":"Incorrect API key provided: ${escapeAll(PROVIDER_KEY)}","type":"invalid_request_error","code":"invalid_api_key"}}` },
  'escaped-as-text': { status: 422, type: 'text/plain', body: `{"error":{"message":"key ${escapeAll(PROVIDER_KEY)}","type":"invalid_request_error"}}` },
  base64: {
    status: 400,
    type: 'application/json',
    body: JSON.stringify({ error: { message: `echo: Authorization: Basic ${basic('u:')} / ${basic('user:')} / ${basic('apikey:')}`, type: 'invalid_request_error', code: null } }),
  },
  'base64-url': {
    status: 400,
    type: 'application/json',
    body: JSON.stringify({ error: { message: `token=${Buffer.from(`x${PROVIDER_KEY}`).toString('base64url')}`, type: 'invalid_request_error', code: null } }),
  },
  'key-in-field-name': { status: 400, type: 'application/json', body: JSON.stringify({ error: { message: 'bad', type: 'invalid_request_error', code: null, [PROVIDER_KEY]: 1 } }) },
  'text-headers': { status: 400, type: 'text/plain', body: `Bad request.\nauthorization: Bearer ${PROVIDER_KEY}\nhost: upstream\n` },
  html: { status: 404, type: 'text/html', body: `<html><body>No route. Your headers: Bearer ${PROVIDER_KEY}</body></html>` },
  'labelled-json-but-not': { status: 400, type: 'application/json', body: `oops Bearer ${PROVIDER_KEY}` },
};

/** Every form the test looks for: raw, escaped, and the exact base64 texts the provider sent. */
function leaks(text: string): string[] {
  const found: string[] = [];
  if (text.includes(PROVIDER_KEY)) found.push('raw');
  if (text.includes(escapeAll(PROVIDER_KEY)) || text.includes(PROVIDER_KEY.replace(/-/g, '\\u002d'))) found.push('escaped');
  for (const p of ['u:', 'user:', 'apikey:']) if (text.includes(basic(p).slice(4, -4))) found.push(`base64 ${p}`);
  if (text.includes(Buffer.from(`x${PROVIDER_KEY}`).toString('base64url').slice(4, -4))) found.push('base64url');
  try {
    if (JSON.stringify(JSON.parse(text)).includes(PROVIDER_KEY)) found.push('decoded');
  } catch {
    /* not JSON: the raw checks above apply */
  }
  return found;
}

describe('issue 22 item 4: provider keys in any encoding never reach a client', function () {
  this.timeout(30_000);
  let upstream: Server;
  let gw: TestGateway;

  before(async () => {
    upstream = createServer((req, res) => {
      const c = CASES[String(req.headers['x-case-from-test'] ?? '')] ?? CASES[new URL(req.url ?? '/', 'http://x').searchParams.get('case') ?? ''];
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const name = (/"x_case":"([^"]+)"/.exec(body) ?? [])[1];
        const k = c ?? CASES[name ?? ''] ?? CASES.raw;
        res.writeHead(k.status, { 'content-type': k.type }).end(k.body);
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`;
    gw = await startTestGateway({
      auth: { keys: [{ hash: hashKey(CLIENT), name: 'c', team: 'red' }] },
      teams: [{ name: 'red' }],
      routing: { max_retries: 0 },
      providers: [{ name: 'p', base_url: url, api_key: PROVIDER_KEY, timeout_ms: 2000, models: [{ name: 'm', input_per_million: 1, output_per_million: 2 }] }],
      passthrough: [{ path: '/v1/moderations', methods: ['POST'] }],
    });
  });
  after(async () => {
    await gw?.shutdown();
    await new Promise<void>((r) => upstream?.close(() => r()));
  });

  for (const [name, c] of Object.entries(CASES)) {
    it(`pass-through, ${name} (${c.status} ${c.type}): OpenAI error shape, status ${c.status}, no form of the key`, async () => {
      const r = await post(gw.url, '/v1/moderations', { input: 'x', x_case: name }, { authorization: `Bearer ${CLIENT}` });
      assert.equal(r.status, c.status, r.text);
      assertOpenAIError(r.json, name);
      assert.deepEqual(leaks(r.text), [], r.text);
      if (!c.type.startsWith('application/json') || name === 'labelled-json-but-not' || name === 'escaped-as-text') {
        if (name !== 'escaped-as-text') assert.match(r.text, new RegExp(`HTTP ${c.status}`), 'a non-JSON body is replaced by a generic error naming the status');
      }
    });

    it(`inference, ${name} (${c.status} ${c.type}): relayed as an OpenAI error, no form of the key`, async () => {
      const r = await post(gw.url, '/v1/chat/completions', chatBody('m', { x_case: name }), { authorization: `Bearer ${CLIENT}` });
      if (c.status !== 404) assert.equal(r.status, c.status, r.text); // a 404 is a routing failure (model not at that provider), answered 502
      assertOpenAIError(r.json, name);
      assert.deepEqual(leaks(r.text), [], r.text);
    });
  }

  it('a JSON error without the key is relayed unchanged in substance', async () => {
    const r = await post(gw.url, '/v1/moderations', { input: 'x', x_case: 'key-in-field-name' }, { authorization: `Bearer ${CLIENT}` });
    assert.equal((r.json as { error: { message: string } }).error.message, 'bad');
  });
});
