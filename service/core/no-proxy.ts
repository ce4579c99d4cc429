/**
 * undici's NO_PROXY rule, in core so the gateway (upstream/proxy.ts) and the Pulumi program's
 * egress plan (infra/egress.ts) agree on which hosts go direct without infra importing upstream.
 */

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

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
