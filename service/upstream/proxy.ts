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

/** Proxy settings as undici and curl read them (lower-case names first); undefined when no proxy is set. */
export function proxyFromEnv(env: NodeJS.ProcessEnv): ProxySettings | undefined {
  const httpProxy = env.http_proxy ?? env.HTTP_PROXY ?? '';
  const httpsProxy = env.https_proxy ?? env.HTTPS_PROXY ?? '';
  if (!httpProxy && !httpsProxy) return undefined;
  return { httpProxy, httpsProxy, noProxy: env.no_proxy ?? env.NO_PROXY ?? '' };
}

export { bypassesProxy } from '../core/no-proxy';
