/**
 * Hostile input: every case gets a clear error (OpenAI-shaped where the gateway answers,
 * Node's own 408/431 at the HTTP layer), never reaches an upstream path it should not, and
 * leaves the process healthy (GET /health is checked after every case).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { AddressInfo, connect, Socket } from 'node:net';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { hashKey } from '../../service/tenancy/keys';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { provider, startTestGateway, TestGateway } from '../helpers/gateway';
import { assertOpenAIError, chatBody, JsonResponse, post, rawHttp } from './helpers';

const CLIENT_KEY = 'sk-gw-hostile-client';
const AUTH = { authorization: `Bearer ${CLIENT_KEY}` };
const BODY_LIMIT = 64 * 1024;
const HEADERS_TIMEOUT_MS = 400;

describe('hostile input', function () {
  this.timeout(20_000);
  let upstream: FakeUpstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startFakeUpstream('up');
    gw = await startTestGateway({
      server: { body_limit_bytes: BODY_LIMIT, headers_timeout_ms: HEADERS_TIMEOUT_MS, log_level: 'warn' },
      auth: { keys: [{ hash: hashKey(CLIENT_KEY), name: 'ci', team: 'red', project: 'web' }] },
      providers: [provider('up', upstream.url, ['m'])],
    });
  });
  after(async () => {
    await gw.shutdown();
    await upstream.close();
  });
  beforeEach(() => {
    upstream.received.length = 0;
  });
  afterEach(async () => {
    const health = await fetch(`${gw.url}/health`);
    assert.equal(health.status, 200, 'the process stays healthy after the case');
    await health.arrayBuffer();
  });

  const chat = (body: unknown, headers: Record<string, string> = {}) => post(gw.url, '/v1/chat/completions', body, { ...AUTH, ...headers });
  const expectError = (res: JsonResponse, status: number, code: string) => {
    assert.equal(res.status, status, res.text.slice(0, 300));
    assert.equal(assertOpenAIError(res.json).code, code);
    assert.equal(upstream.received.length, 0, 'nothing reached the upstream');
  };

  describe('bodies', () => {
    it('a body over body_limit_bytes: 413 request_too_large', async () => {
      expectError(await chat(chatBody('m', { pad: 'x'.repeat(BODY_LIMIT) })), 413, 'request_too_large');
    });

    it('an oversized chunked body (no Content-Length): 413, the stream is not read to the end', async () => {
      const chunk = Buffer.alloc(16 * 1024, 0x20);
      let sent = 0;
      const body = new ReadableStream({
        pull(controller) {
          if (sent > 8 * 1024 * 1024) return controller.close();
          sent += chunk.length;
          controller.enqueue(sent === chunk.length ? Buffer.from('{"model":"m","pad":"') : chunk);
        },
      });
      const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body, duplex: 'half' } as RequestInit).catch(
        (err: Error) => err,
      );
      if (res instanceof Error) return; // the server may close the connection before fetch has sent everything
      assert.equal(res.status, 413);
      assertOpenAIError(await res.json());
    });

    it('an oversized body without a key: 401 before any parsing', async () => {
      const res = await post(gw.url, '/v1/chat/completions', chatBody('m', { pad: 'x'.repeat(BODY_LIMIT * 4) }));
      expectError(res, 401, 'missing_api_key');
    });

    it('JSON nested 65 deep: 400 json_too_deep (64 is accepted)', async () => {
      const nest = (n: number) => '['.repeat(n) + ']'.repeat(n);
      expectError(await chat(`{"model":"m","messages":[{"role":"user","content":"x"}],"deep":${nest(64)}}`), 400, 'json_too_deep');
      const ok = await chat(`{"model":"m","messages":[{"role":"user","content":"x"}],"deep":${nest(62)}}`);
      assert.equal(ok.status, 200, ok.text);
      const bracketsInString = await chat(chatBody('m', { messages: [{ role: 'user', content: '['.repeat(10_000) }] }));
      assert.equal(bracketsInString.status, 200, 'brackets inside strings do not count');
    });

    it('100,000 levels of nesting: refused as fast, no stack overflow', async () => {
      const t0 = Date.now();
      expectError(await chat(`{"model":"m","x":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`), 400, 'json_too_deep');
      expectError(await chat(`[${'['.repeat(60_000)}`), 400, 'json_too_deep');
      assert.ok(Date.now() - t0 < 2000);
    });

    for (const [name, type] of [
      ['text/plain', 'text/plain'],
      ['form-urlencoded', 'application/x-www-form-urlencoded'],
      ['multipart', 'multipart/form-data; boundary=x'],
      ['application/jsonp (prefix trick)', 'application/jsonp'],
    ] as const) {
      it(`Content-Type ${name}: 415 unsupported_media_type`, async () => {
        expectError(await chat(JSON.stringify(chatBody('m')), { 'content-type': type }), 415, 'unsupported_media_type');
      });
    }

    it('no Content-Type: 415', async () => {
      const res = await rawHttp(gw.url, `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${CLIENT_KEY}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
      assert.match(res, /^HTTP\/1\.1 415 /);
      assert.match(res, /"code":"unsupported_media_type"/);
    });

    it('Content-Encoding: gzip is inflated under the same size limit (a gzip bomb is 413), broken gzip is 400, unknown encodings 415', async () => {
      const ok = await chat(gzipSync(JSON.stringify(chatBody('m'))), { 'content-encoding': 'gzip' });
      assert.equal(ok.status, 200, ok.text);
      upstream.received.length = 0;
      const bomb = gzipSync(Buffer.concat([Buffer.from('{"model":"m","pad":"'), Buffer.alloc(50 * 1024 * 1024, 0x61), Buffer.from('"}')]));
      assert.ok(bomb.length < 100 * 1024, 'a small compressed body');
      expectError(await chat(bomb, { 'content-encoding': 'gzip' }), 413, 'request_too_large');
      expectError(await chat(JSON.stringify(chatBody('m')), { 'content-encoding': 'gzip' }), 400, 'invalid_body');
      expectError(await chat(JSON.stringify(chatBody('m')), { 'content-encoding': 'x-unknown' }), 415, 'unsupported_media_type');
    });

    it('deflate and br bodies, a byte order mark, a declared charset, and path variants are served as on the Express routes', async () => {
      const body = JSON.stringify(chatBody('m'));
      assert.equal((await chat(deflateSync(body), { 'content-encoding': 'deflate' })).status, 200);
      assert.equal((await chat(brotliCompressSync(body), { 'content-encoding': 'br' })).status, 200);
      assert.equal((await chat(`\ufeff${body}`)).status, 200, 'a UTF-8 byte order mark is skipped');
      assert.equal((await chat(body, { 'content-type': 'application/json; charset=UTF-8' })).status, 200);
      assert.equal((await chat(Buffer.from(body, 'utf16le'), { 'content-type': 'application/json; charset=utf-16le' })).status, 200);
      for (const path of ['/v1/chat/completions?x=1', '/v1/chat/completions/', '/V1/Chat/Completions']) {
        const res = await post(gw.url, path, chatBody('m'), AUTH);
        assert.equal(res.status, 200, `${path}: ${res.text}`);
      }
      upstream.received.length = 0;
      expectError(await chat(body, { 'content-type': 'application/json; charset=latin1' }), 415, 'unsupported_media_type');
      expectError(await chat(''), 400, 'missing_model'); // an empty body reads as {}
    });

    it('invalid UTF-8: 400 invalid_encoding', async () => {
      const bytes = Buffer.concat([Buffer.from('{"model":"m","messages":[{"role":"user","content":"'), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('"}]}')]);
      expectError(await chat(bytes), 400, 'invalid_encoding');
    });

    it('invalid JSON, a JSON array, a bare string: 400', async () => {
      expectError(await chat('{"model": "m", '), 400, 'invalid_json');
      expectError(await chat('[1,2]'), 400, 'invalid_body');
      expectError(await chat('"m"'), 400, 'invalid_json');
    });

    for (const v of [-1, 0, 1.5, 1e12, Number.MAX_SAFE_INTEGER, '100', null, true]) {
      it(`max_tokens ${JSON.stringify(v)}: ${v === null ? 'ignored' : '400 invalid_value'}`, async () => {
        const res = await chat(chatBody('m', { max_tokens: v }));
        if (v === null) {
          assert.equal(res.status, 200);
          return;
        }
        expectError(res, 400, 'invalid_value');
        assert.equal((res.json as { error: { param: string } }).error.param, 'max_tokens');
      });
    }

    it('max_completion_tokens huge: 400', async () => {
      expectError(await chat(chatBody('m', { max_completion_tokens: 10_000_001 })), 400, 'invalid_value');
    });

    it('unknown fields are passed through to the provider untouched (documented behaviour)', async () => {
      const extra = { x_vendor_option: { nested: [1, 'two', { three: null }] }, logit_bias: { '50256': -100 }, 'weird key \u00e9': 'v\u00e9' };
      const res = await chat(chatBody('m', extra));
      assert.equal(res.status, 200);
      assert.equal(upstream.received.length, 1);
      const got = upstream.received[0].body;
      for (const [k, v] of Object.entries(extra)) assert.deepEqual(got[k], v, `field ${k} passed through`);
      upstream.received.length = 0;
    });

    it('a prototype-pollution body is inert', async () => {
      const res = await chat('{"model":"m","messages":[{"role":"user","content":"x"}],"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}');
      assert.equal(res.status, 200);
      assert.equal(({} as { polluted?: boolean }).polluted, undefined);
      upstream.received.length = 0;
    });
  });

  describe('headers', () => {
    it('headers over 16 KiB: 431 from Node, connection closed', async () => {
      const res = await rawHttp(gw.url, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
      assert.match(res, /^HTTP\/1\.1 431 /);
    });

    it('an Authorization header of 15 KiB: 401, not a crash', async () => {
      const res = await post(gw.url, '/v1/chat/completions', chatBody('m'), { authorization: `Bearer ${'k'.repeat(15 * 1024)}` });
      expectError(res, 401, 'invalid_api_key');
    });

    it('CR/LF in a header value: refused by the HTTP parser (400), nothing injected', async () => {
      for (const value of ['abc\rX-Injected: yes', 'abc\nX-Injected: yes', 'abc\r\n X-Injected: yes']) {
        const res = await rawHttp(gw.url, `GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: ${value}\r\nConnection: close\r\n\r\n`);
        assert.doesNotMatch(res, /x-injected/i, JSON.stringify(value));
        assert.match(res, /^HTTP\/1\.1 (400|200) /);
        assert.doesNotMatch(res, /x-request-id: abc/i, 'the bad id is not reflected');
      }
    });

    it('x-request-id outside [A-Za-z0-9._:-]{1,128} is replaced, not reflected or forwarded', async () => {
      for (const id of ['<script>alert(1)</script>', 'a b', 'x'.repeat(129), '%0d%0aX-Injected:%201', 'id\u00e9']) {
        const res = await chat(chatBody('m'), { 'x-request-id': encodeURI(id) === id ? id : id.replace(/[^\x20-\x7e]/g, '?') });
        assert.equal(res.status, 200);
        const echoed = res.headers.get('x-request-id')!;
        assert.match(echoed, /^[0-9a-f-]{36}$/, `replaced by a UUID for ${JSON.stringify(id)}`);
        assert.equal(upstream.received.at(-1)!.headers['x-request-id'], echoed, 'the upstream gets the gateway id');
      }
      const ok = await chat(chatBody('m'), { 'x-request-id': 'trace-123:abc.def_9' });
      assert.equal(ok.headers.get('x-request-id'), 'trace-123:abc.def_9', 'a well-formed id is kept');
      upstream.received.length = 0;
    });

    it('a model name with CR/LF: 400 invalid_model, nothing in the response headers', async () => {
      const res = await chat(chatBody('m\r\nX-Injected: yes'));
      expectError(res, 400, 'invalid_model');
      assert.equal(res.headers.get('x-injected'), null);
      const viaPath = await fetch(`${gw.url}/v1/models/m%0D%0AX-Injected:%20yes`, { headers: AUTH });
      assert.equal(viaPath.status, 404);
      assert.equal(viaPath.headers.get('x-injected'), null);
      assertOpenAIError(await viaPath.json());
    });

    it('more than 100 headers (maxHeadersCount): refused with 431 by a Node with the CVE-2026-58044 fix, else the extras are ignored', async () => {
      const many = Array.from({ length: 300 }, (_x, i) => `X-H${i}: ${i}\r\n`).join('');
      const request = `GET /health HTTP/1.1\r\nHost: x\r\n${many}Connection: close\r\n\r\n`;
      // What this Node does with a server limited to 100 headers (Node 24.18.1 and later refuse; Node 20 truncates).
      const bare = createServer((_req, res) => res.end('ok'));
      bare.maxHeadersCount = 100;
      await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
      const runtime = await rawHttp(`http://127.0.0.1:${(bare.address() as AddressInfo).port}`, request).finally(() => bare.close());
      const expected = /^HTTP\/1\.1 431 /.test(runtime) ? /^HTTP\/1\.1 431 / : /^HTTP\/1\.1 200 /;
      // 300 headers stay under Node's default limit (1000): a 431 comes from the gateway's own limit of 100.
      assert.match(await rawHttp(gw.url, request), expected);
    });
  });

  describe('path traversal in model names', () => {
    for (const model of ['../../etc/passwd', '%2e%2e/%2e%2e/etc/passwd', '..\\..\\windows\\win.ini', '/v1/../../admin', 'm/../../x']) {
      it(`chat body model ${JSON.stringify(model)}: 404 model_not_found, upstream untouched`, async () => {
        expectError(await chat(chatBody(model)), 404, 'model_not_found');
      });
    }

    for (const path of [
      '/v1/models/..%2F..%2Fetc%2Fpasswd',
      '/v1/models/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
      '/v1/models/%2E%2E',
      '/v1/models/..',
      '/v1/models/../../etc/passwd',
      '/v1/%2e%2e/%2e%2e/etc/passwd',
      '/v1/./models/../../../secret',
      '/v1/files%2f..%2f..%2fadmin',
      '/v1/x/%2E%2e/%2e%2E/admin',
    ]) {
      it(`raw request line ${path} (not normalised by a client): 404, never forwarded to the pass-through provider`, async () => {
        const res = await rawHttp(gw.url, `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${CLIENT_KEY}\r\nConnection: close\r\n\r\n`);
        assert.match(res, /^HTTP\/1\.1 404 /);
        assert.match(res, /"code":"(model_not_found|unknown_url)"/);
        assert.equal(upstream.received.length, 0, 'the pass-through proxy did not forward it');
      });
    }
  });

  describe('slowloris', () => {
    it(`clients sending headers byte by byte are cut off after headers_timeout_ms (${HEADERS_TIMEOUT_MS} ms); others are served meanwhile`, async () => {
      const start = Date.now();
      const request = `GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(200)}\r\n\r\n`;
      const slow = Array.from({ length: 20 }, () => {
        const s: Socket = connect(Number(new URL(gw.url).port), '127.0.0.1');
        let i = 0;
        let got = '';
        s.on('error', () => undefined);
        s.on('data', (d) => (got += d));
        const timer = setInterval(() => !s.destroyed && s.write(request[i++ % request.length]), 50);
        return new Promise<{ ms: number; got: string }>((resolve) =>
          s.on('close', () => {
            clearInterval(timer);
            resolve({ ms: Date.now() - start, got });
          }),
        );
      });
      // Meanwhile, normal clients are served promptly.
      for (let i = 0; i < 10; i++) {
        const t0 = Date.now();
        const res = await chat(chatBody('m'));
        assert.equal(res.status, 200);
        assert.ok(Date.now() - t0 < 500, `a normal request took ${Date.now() - t0} ms during the slowloris attack`);
      }
      const closed = await Promise.race([Promise.all(slow), new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
      assert.ok(closed, 'every slowloris connection was closed by the server within 5 s');
      for (const c of closed) {
        assert.ok(c.ms < HEADERS_TIMEOUT_MS * 4, `closed after ${c.ms} ms`);
        assert.match(c.got, /^HTTP\/1\.1 408 /);
      }
      upstream.received.length = 0;
    });
  });
});
