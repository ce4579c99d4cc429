/**
 * Outbound HTTP(S) proxy settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), read once at start.
 *
 * The provider pools use undici's EnvHttpProxyAgent with these settings (client.ts); the /v1
 * pass-through forwards through the same pools. `bypassesProxy` is undici's NO_PROXY rule, so the
 * gateway and the Pulumi program's egress plan agree on which hosts go direct.
 */

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
