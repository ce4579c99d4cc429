/**
 * HTTPS_PROXY / NO_PROXY: the real gateway process, started with a proxy in its environment, sends
 * provider calls through a CONNECT proxy on 127.0.0.1 (an https:// provider too, its TLS inside the
 * tunnel), calls a NO_PROXY host directly, and tunnels an allowlisted /v1 pass-through path as well.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { AddressInfo, Socket, connect } from 'node:net';
import { join } from 'node:path';
import OpenAI from 'openai';
import { bypassesProxy, proxyFromEnv } from '../../service/upstream/proxy';
import { hashKey } from '../../service/tenancy/keys';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { GatewayProcess, startGatewayProcess } from '../helpers/gateway-process';
import { testTempDir } from '../helpers/temp-dirs';

const CLIENT_KEY = 'sk-gw-proxy-test-client-key';
const PRICES = { input_per_million: 1, output_per_million: 2 };

interface ConnectProxy {
  url: string;
  /** The host:port of every CONNECT it tunnelled, in order. */
  connects: string[];
  /** Bytes the gateway sent through tunnels, per host:port (a reused tunnel counts too). */
  bytesTo: Map<string, number>;
  close(): Promise<void>;
}

/** A minimal forward proxy: answers CONNECT with 200 and pipes bytes both ways; refuses anything else. */
async function startConnectProxy(): Promise<ConnectProxy> {
  const sockets = new Set<Socket>();
  const connects: string[] = [];
  const bytesTo = new Map<string, number>();
  const server: Server = createHttpServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req, client: Socket, head: Buffer) => {
    connects.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      client.on('data', (b: Buffer) => bytesTo.set(req.url ?? '', (bytesTo.get(req.url ?? '') ?? 0) + b.length));
      upstream.pipe(client).pipe(upstream);
    });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined).on('close', () => sockets.delete(s));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connects,
    bytesTo,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A self-signed certificate for 127.0.0.1 (openssl), trusted by the gateway through NODE_EXTRA_CA_CERTS. */
function selfSigned(dir: string): { cert: string; key: string; certFile: string } {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], {
    stdio: 'ignore',
  });
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile };
}

/** An OpenAI-shaped HTTPS upstream: chat completions and moderations, recording the paths it served. */
async function startHttpsUpstream(tlsFiles: { cert: string; key: string }) {
  const paths: string[] = [];
  const server = createHttpsServer(tlsFiles, (req, res) => {
    paths.push(`${req.method} ${req.url} ${req.headers.authorization ?? '(no authorization)'}`);
    req.resume();
    req.on('end', () => {
      const body = req.url?.endsWith('/moderations')
        ? { id: 'modr-tls', model: 'omni-moderation-latest', results: [{ flagged: false, categories: {}, category_scores: {} }] }
        : {
            id: 'chatcmpl-tls',
            object: 'chat.completion',
            created: 1700000000,
            model: 'm-tls',
            choices: [{ index: 0, message: { role: 'assistant', content: 'over tls' }, finish_reason: 'stop' }],
            usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
          };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, paths, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const authority = (url: string) => new URL(url).host;

describe('upstream calls through an HTTPS proxy', function () {
  this.timeout(60_000);
  const dir = testTempDir('aigw-proxy-');
  let proxy: ConnectProxy;
  let plain: FakeUpstream;
  let direct: FakeUpstream;
  let secure: Awaited<ReturnType<typeof startHttpsUpstream>>;
  let gw: GatewayProcess;
  let client: OpenAI;

  before(async () => {
    const tlsFiles = selfSigned(dir);
    [proxy, plain, direct, secure] = await Promise.all([startConnectProxy(), startFakeUpstream('plain'), startFakeUpstream('direct'), startHttpsUpstream(tlsFiles)]);
    const provider = (name: string, base_url: string, model: string) => ({ name, base_url, api_key: `sk-provider-${name}`, timeout_ms: 5000, models: [{ name: model, ...PRICES }] });
    gw = await startGatewayProcess(
      {
        auth: { keys: [{ hash: hashKey(CLIENT_KEY), name: 'ci', team: 'red' }] },
        teams: [{ name: 'red' }],
        // The first openai provider also serves the allowlisted pass-through path.
        providers: [provider('tls', secure.url, 'm-tls'), provider('plain', plain.url, 'm-plain'), provider('direct', direct.url, 'm-direct')],
        passthrough: [{ path: '/v1/moderations', methods: ['POST'] }],
      },
      { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url, NO_PROXY: `example.internal, ${authority(direct.url)}`, NODE_EXTRA_CA_CERTS: tlsFiles.certFile },
    );
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
  });

  after(async () => {
    await gw?.stop();
    await Promise.all([proxy?.close(), plain?.close(), direct?.close(), secure?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const ask = (model: string) => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });

  it('tunnels an https:// provider through HTTPS_PROXY with CONNECT, TLS inside the tunnel', async () => {
    const r = await ask('m-tls');
    assert.equal(r.choices[0].message.content, 'over tls');
    assert.ok(proxy.connects.includes(authority(secure.url)), `the proxy saw ${proxy.connects.join(', ') || 'nothing'}`);
    assert.ok(secure.paths.includes('POST /v1/chat/completions Bearer sk-provider-tls'), secure.paths.join('\n'));
  });

  it('tunnels an http:// provider through HTTP_PROXY', async () => {
    const r = await ask('m-plain');
    assert.equal(r.choices[0].message.content, 'Hello from plain');
    assert.ok(proxy.connects.includes(authority(plain.url)));
    assert.equal(plain.received.length, 1);
  });

  it('calls a NO_PROXY host directly: the proxy never sees it', async () => {
    const r = await ask('m-direct');
    assert.equal(r.choices[0].message.content, 'Hello from direct');
    assert.equal(direct.received.length, 1);
    assert.ok(!proxy.connects.includes(authority(direct.url)), `the proxy tunnelled the NO_PROXY host: ${proxy.connects.join(', ')}`);
  });

  it('tunnels an allowlisted /v1 pass-through path too (the same proxied pools)', async () => {
    const before = proxy.bytesTo.get(authority(secure.url)) ?? 0;
    const mod = await client.moderations.create({ input: 'hi' }).catch((err) => assert.fail(`${err}\n${gw.output()}`));
    assert.equal(mod.id, 'modr-tls');
    // The provider key replaced the client's gateway key before the request entered the tunnel.
    assert.ok(secure.paths.includes('POST /v1/moderations Bearer sk-provider-tls'), secure.paths.join('\n'));
    assert.ok((proxy.bytesTo.get(authority(secure.url)) ?? 0) > before, 'the pass-through went around the proxy');
  });

  it("reads the settings and the NO_PROXY rule the way undici's EnvHttpProxyAgent does", () => {
    assert.equal(proxyFromEnv({}), undefined);
    assert.deepEqual(proxyFromEnv({ HTTPS_PROXY: 'http://p:3128', no_proxy: 'a', NO_PROXY: 'b' }), { httpProxy: '', httpsProxy: 'http://p:3128', noProxy: 'a' });
    const table: [string, string, boolean][] = [
      ['https://api.openai.com/v1', '', false],
      ['https://api.openai.com/v1', '*', true],
      ['https://api.openai.com/v1', 'openai.com', true],
      ['https://api.openai.com/v1', '.openai.com', true],
      ['https://api.openai.com/v1', '*.openai.com', true],
      ['https://notopenai.com/v1', 'openai.com', false],
      ['http://vllm.models.svc.cluster.local:8000/v1', '.svc,.cluster.local', true],
      ['http://10.0.0.5:8000/v1', '10.0.0.5:8000', true],
      ['http://10.0.0.5:8001/v1', '10.0.0.5:8000', false],
      ['https://API.OpenAI.com/v1', 'api.openai.com:443', true],
    ];
    for (const [url, noProxy, expected] of table) assert.equal(bypassesProxy(url, noProxy), expected, `${url} with NO_PROXY=${noProxy}`);
  });
});
