/**
 * Where the gateway pods may connect, derived from the providers' base_url (and the proxy) at render time.
 *
 * Pure functions over plain config: each upstream URL is classified (in-cluster Service, private or
 * public address, private or public host name), then checked against what the rendered policies
 * allow. A destination the policies would block is a render error naming the provider and the rule
 * to add; nothing is left to fail over silently at runtime.
 */
import { isIP } from 'node:net';
import { bypassesProxy } from '../service/core/no-proxy';
import type { EgressConfig } from './egressSchema';

/** Private, CGNAT, link-local and loopback ranges: never reached by the public-443 rule. */
export const NON_PUBLIC_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '100.64.0.0/10', '127.0.0.0/8'];
const PRIVATE_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10'];
/** Loopback is the pod itself; link-local holds the cloud metadata endpoint; 0/8 is "this network". */
const FORBIDDEN_RANGES = ['127.0.0.0/8', '169.254.0.0/16', '0.0.0.0/8'];
/** Suffixes that never resolve on the public internet (RFC 6762, RFC 8375, common corporate zones). */
const PRIVATE_SUFFIXES = ['.internal', '.local', '.localdomain', '.lan', '.corp', '.home.arpa', '.intranet', '.private'];

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

export type Destination =
  | { kind: 'service'; host: string; namespace: string; port: number }
  | { kind: 'address'; host: string; port: number; scope: 'public' | 'private' | 'forbidden' }
  | { kind: 'host'; host: string; port: number; scope: 'public' | 'private' };

// ---------------------------------------------------------------- CIDR arithmetic

/** A dotted IPv4 address as an unsigned 32-bit number, or undefined. */
export function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

/** `a.b.c.d/n` as [network, prefix], or undefined when it does not parse. */
export function parseCidr(cidr: string): [number, number] | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(cidr);
  const ip = m && ipv4ToInt(m[1]);
  const prefix = m ? Number(m[2]) : NaN;
  if (ip === undefined || ip === null || !(prefix >= 0 && prefix <= 32)) return undefined;
  return [ip, prefix];
}

const mask = (prefix: number) => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);

export function cidrContains(cidr: string, ip: string): boolean {
  const net = parseCidr(cidr);
  const addr = ipv4ToInt(ip);
  if (!net || addr === undefined) return false;
  return (addr & mask(net[1])) >>> 0 === (net[0] & mask(net[1])) >>> 0;
}

/** Is `inner` (a CIDR) inside `outer`? NetworkPolicy `except` entries must be. */
export function cidrWithin(inner: string, outer: string): boolean {
  const i = parseCidr(inner);
  const o = parseCidr(outer);
  if (!i || !o || i[1] < o[1]) return false;
  return (i[0] & mask(o[1])) >>> 0 === (o[0] & mask(o[1])) >>> 0;
}

// ---------------------------------------------------------------- classification

/** What an upstream URL points at, as far as a NetworkPolicy is concerned. */
export function classify(rawUrl: string, clusterDomain: string): Destination {
  const url = new URL(rawUrl);
  const host = url.hostname
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '')
    .toLowerCase();
  const port = Number(url.port) || DEFAULT_PORTS[url.protocol] || 0;
  const svc = new RegExp(`^[a-z0-9-]+\\.([a-z0-9-]+)\\.svc(\\.${clusterDomain.replace(/\./g, '\\.')})?$`).exec(host);
  if (svc) return { kind: 'service', host, namespace: svc[1], port };
  if (isIP(host) === 4) {
    const scope = FORBIDDEN_RANGES.some((r) => cidrContains(r, host)) ? 'forbidden' : PRIVATE_RANGES.some((r) => cidrContains(r, host)) ? 'private' : 'public';
    return { kind: 'address', host, port, scope };
  }
  if (isIP(host) === 6) return { kind: 'address', host, port, scope: 'forbidden' };
  const isPrivate = !host.includes('.') || host.includes('.privatelink.') || PRIVATE_SUFFIXES.some((s) => host.endsWith(s));
  return { kind: 'host', host, port, scope: isPrivate ? 'private' : 'public' };
}

/** NO_PROXY for the pods: the stack's entries plus in-cluster names, which a proxy outside the cluster cannot reach. */
export function noProxyList(egress: Pick<EgressConfig, 'proxy' | 'clusterDomain'>): string[] {
  return [...new Set([...(egress.proxy?.noProxy ?? []), '.svc', `.${egress.clusterDomain}`])];
}

// ---------------------------------------------------------------- the plan

export interface Upstream {
  /** The stack config key of the URL, for messages: `gateway.providers[2]`. */
  where: string;
  name: string;
  url: string;
}

export interface EgressPlan {
  /** Some provider is reached directly on a public address, port 443. */
  public443: boolean;
  /** In-cluster Services: one rule per namespace and port. */
  services: { namespace: string; port: number }[];
  extra: EgressConfig['extra'];
  /** Environment for the gateway container (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) when a proxy is set. */
  proxyEnv: Record<string, string>;
  problems: string[];
}

const extraHint = (d: Destination) => (d.kind === 'address' ? `{cidr: ${d.host}/32, port: ${d.port}}` : `{cidr: <the range ${d.host} resolves to>, port: ${d.port}, hosts: [${d.host}]}`);

/** An egress.extra entry allows this destination (by host name, or by CIDR for an address). */
const coveredByExtra = (d: Destination, egress: EgressConfig) =>
  egress.extra.some((e) => e.port === d.port && (e.hosts.includes(d.host) || (d.kind === 'address' && !!e.cidr && cidrContains(e.cidr, d.host))));

/** Why the rendered policies would block `d`, or undefined when they allow it. */
function blocked(d: Destination, egress: EgressConfig): string | undefined {
  if (d.kind === 'service') return undefined;
  if (d.scope === 'forbidden') return `${d.host} is a loopback, link-local or IPv6 address, which the policies never allow (use a Service or a private IPv4 address)`;
  if (coveredByExtra(d, egress) || (d.scope === 'public' && d.port === 443)) return undefined;
  const what = d.scope === 'private' ? `a private ${d.kind === 'address' ? 'address' : 'host name'}` : `a public ${d.kind === 'address' ? 'address' : 'host'} on a port other than 443`;
  return `${d.host}:${d.port} is ${what}; add the ai-gateway:egress.extra entry ${extraHint(d)}`;
}

/**
 * Checks every upstream (and the proxy) against the policies about to be rendered, and lists the
 * rules they need. `problems` is empty when every upstream is reachable.
 */
export function planEgress(upstreams: Upstream[], egress: EgressConfig): EgressPlan {
  const plan: EgressPlan = { public443: false, services: [], extra: egress.extra, proxyEnv: {}, problems: [] };
  const noProxy = noProxyList(egress);
  const direct = egress.proxy ? upstreams.filter((u) => bypassesProxy(u.url, noProxy)) : upstreams;
  const targets: Upstream[] = egress.proxy ? [...direct, { where: 'egress.proxy.url', name: 'proxy', url: egress.proxy.url }] : direct;
  if (egress.proxy) plan.proxyEnv = { HTTPS_PROXY: egress.proxy.url, HTTP_PROXY: egress.proxy.url, NO_PROXY: noProxy.join(',') };
  for (const u of targets) {
    const d = classify(u.url, egress.clusterDomain);
    const why = blocked(d, egress);
    if (why) plan.problems.push(`ai-gateway:${u.where} (${u.name === 'proxy' ? 'the HTTPS proxy' : `provider "${u.name}"`}): ${u.url} would be blocked by the rendered NetworkPolicies: ${why}`);
    else if (d.kind === 'service') {
      if (!plan.services.some((s) => s.namespace === d.namespace && s.port === d.port)) plan.services.push({ namespace: d.namespace, port: d.port });
    } else if (d.scope === 'public' && d.port === 443 && !coveredByExtra(d, egress)) plan.public443 = true;
  }
  return plan;
}

// ---------------------------------------------------------------- the trace collector

/** Who the collector is, as a NetworkPolicy can name it. */
export type CollectorPeer = { kind: 'namespace'; namespace: string; port: number } | { kind: 'ip'; cidr: string; port: number } | { kind: 'external'; host: string; port: number };

const BARE_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/**
 * Classified as provider URLs are (egress.ts `classify`), with two collector rules: any IPv4 address
 * is a /32 peer, and a bare Service name is a Service in the gateway's own namespace.
 */
export function collectorPeer(endpoint: string, gatewayNamespace: string, clusterDomain = 'cluster.local'): CollectorPeer {
  const d = classify(endpoint, clusterDomain);
  if (d.kind === 'service') return { kind: 'namespace', namespace: d.namespace, port: d.port };
  if (d.kind === 'address' && isIP(d.host) === 4) return { kind: 'ip', cidr: `${d.host}/32`, port: d.port };
  if (d.kind === 'host' && BARE_NAME.test(d.host)) return { kind: 'namespace', namespace: gatewayNamespace, port: d.port };
  return { kind: 'external', host: new URL(endpoint).hostname, port: d.port };
}
