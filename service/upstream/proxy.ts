/**
 * Outbound HTTP(S) proxy settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), read once at start.
 *
 * The provider pools use undici's EnvHttpProxyAgent with these settings (client.ts); the /v1
 * pass-through, which runs on node:http, gets a CONNECT-tunnelling agent from `tunnelAgent`.
 * `bypassesProxy` is undici's NO_PROXY rule, so both paths (and the Pulumi program's egress
 * plan) agree on which hosts go direct.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import * as tls from 'node:tls';

export interface ProxySettings {
  httpProxy: string;
  httpsProxy: string;
  noProxy: string;
}

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

/** Proxy settings as undici and curl read them (lower-case names first); undefined when no proxy is set. */
export function proxyFromEnv(env: NodeJS.ProcessEnv): ProxySettings | undefined {
  const httpProxy = env.http_proxy ?? env.HTTP_PROXY ?? '';
  const httpsProxy = env.https_proxy ?? env.HTTPS_PROXY ?? '';
  if (!httpProxy && !httpsProxy) return undefined;
  return { httpProxy, httpsProxy, noProxy: env.no_proxy ?? env.NO_PROXY ?? '' };
}

/** undici's EnvHttpProxyAgent NO_PROXY rule: `*` bypasses all; `host`, `.host`, `*.host`, optional `:port`; suffix match. */
export function bypassesProxy(rawUrl: string, noProxy: string[] | string): boolean {
  const entries = (typeof noProxy === 'string' ? noProxy.split(/[,\s]/) : noProxy).filter(Boolean);
  const url = new URL(rawUrl);
  const host = url.host.replace(/:\d*$/, '').toLowerCase();
  const port = Number(url.port) || DEFAULT_PORTS[url.protocol] || 0;
  if (entries.join(',') === '*') return true;
  return entries.some((raw) => {
    const m = /^(.+):(\d+)$/.exec(raw);
    const entry = (m ? m[1] : raw).replace(/^\*?\./, '').toLowerCase();
    if (m && Number(m[2]) !== port) return false;
    return host === entry || host.endsWith(`.${entry}`);
  });
}

type Done = (err: Error | null, socket?: Socket) => void;

/** Opens a CONNECT tunnel to host:port through an http:// proxy. */
function connectThrough(proxy: URL, host: string, port: number, done: Done) {
  const authority = `${host}:${port}`;
  const auth = proxy.username ? { 'proxy-authorization': `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}` } : {};
  const req = http.request({ host: proxy.hostname, port: Number(proxy.port) || 80, method: 'CONNECT', path: authority, headers: { host: authority, ...auth } });
  req.once('connect', (res, socket) => {
    if (res.statusCode === 200) return done(null, socket);
    socket.destroy();
    done(new Error(`proxy answered ${res.statusCode} to CONNECT`));
  });
  req.once('error', (err) => done(err));
  req.end();
}

/**
 * A node:http(s) Agent that reaches `target` through the proxy, or undefined when the target goes
 * direct (no proxy for its scheme, or NO_PROXY names it). Only http:// proxies are supported.
 */
export function tunnelAgent(target: string, settings: ProxySettings | undefined): http.Agent | undefined {
  if (!settings) return undefined;
  const url = new URL(target);
  const proxyUrl = url.protocol === 'https:' ? settings.httpsProxy || settings.httpProxy : settings.httpProxy;
  if (!proxyUrl || bypassesProxy(target, settings.noProxy)) return undefined;
  const proxy = new URL(proxyUrl);
  if (proxy.protocol !== 'http:') throw new Error(`the pass-through supports http:// proxies only, not ${proxy.protocol}//`);
  const secure = url.protocol === 'https:';
  const AgentClass = secure ? https.Agent : http.Agent;
  const agent = new AgentClass({ keepAlive: true });
  // node's Agent accepts a callback-style createConnection (it waits for the callback when none is returned).
  (agent as unknown as { createConnection: (o: tls.ConnectionOptions & { host: string; port: number }, cb: Done) => undefined }).createConnection = (options, cb) => {
    connectThrough(proxy, options.host, Number(options.port), (err, socket) => {
      if (err || !socket) return cb(err ?? new Error('no tunnel'));
      cb(null, secure ? tls.connect({ ...options, socket, servername: options.servername ?? options.host }) : socket);
    });
    return undefined;
  };
  return agent;
}
