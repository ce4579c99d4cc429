/**
 * NetworkPolicies: everything in the namespace is denied unless a policy below allows it.
 *   gateway in:  HTTP from the route's namespace (Gateway proxies or ingress controller); metrics from Prometheus'.
 *   gateway out: DNS (kube-dns pods by label, NodeLocal DNSCache's address), Redis, and what the providers
 *                need (egress.ts): in-cluster Services by namespace and port, `egress.extra` entries, and
 *                TCP 443 to public addresses only (private, link-local and CGNAT ranges excluded, which keeps
 *                the cloud metadata endpoint and cluster-internal services out of reach); plus the
 *                rules the stack adds (the OpenTelemetry collector's namespace or address, on its port).
 *   redis in:    the Redis port from gateway pods only; redis out: nothing.
 *   ACME solver: cert-manager's HTTP-01 solver pods, from the route's namespace on 8089, while a
 *                certificate of this namespace is proved over HTTP-01.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { APP, REDIS_PORT, selectorLabels } from './common';
import type { EgressConfig } from './config';
import { EgressPlan, NON_PUBLIC_RANGES } from './egress';
import { ACME_SOLVER_LABELS, ACME_SOLVER_PORT } from './gatewayApi';

export { NON_PUBLIC_RANGES };

type Rule = k8s.types.input.networking.v1.NetworkPolicyPeer;

export interface NetworkPoliciesArgs {
  namespace: pulumi.Input<string>;
  labels: Record<string, string>;
  gatewayPorts: { http: number; metrics: number };
  /** Namespace of the pods that forward public traffic (Gateway proxies or ingress controller). */
  routeNamespace: string;
  /** Where cert-manager's HTTP-01 solver is reached from, when a certificate of this namespace uses HTTP-01. */
  acmeSolverFrom?: string;
  prometheusNamespace: string;
  dns: EgressConfig['dns'];
  egress: EgressPlan;
  /** In-cluster Redis pods, or the CIDRs and port of a managed Redis. */
  redis: { mode: 'in-cluster' } | { mode: 'external'; egressCidrs: string[]; port: number; sentinels?: { port: number }[] };
  /** More gateway egress rules (infra/telemetry.ts: the collector). */
  extraEgress?: k8s.types.input.networking.v1.NetworkPolicyEgressRule[];
}

const inNamespace = (name: string): Rule => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': name } } });
const tcp = (port: number) => ({ protocol: 'TCP', port });

/** Egress rules for the upstreams: in-cluster Services, extra entries, and public HTTPS when a provider needs it. */
function upstreamEgress(plan: EgressPlan): k8s.types.input.networking.v1.NetworkPolicyEgressRule[] {
  return [
    ...plan.services.map((s) => ({ to: [inNamespace(s.namespace)], ports: [tcp(s.port)] })),
    ...plan.extra.map((e) => ({ to: [e.cidr ? { ipBlock: { cidr: e.cidr } } : inNamespace(e.namespace!)], ports: [{ protocol: e.protocol, port: e.port }] })),
    ...(plan.public443 ? [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: NON_PUBLIC_RANGES } }], ports: [tcp(443)] }] : []),
  ];
}

function dnsEgress(dns: EgressConfig['dns']): k8s.types.input.networking.v1.NetworkPolicyEgressRule {
  const kubeDns: Rule = { ...inNamespace(dns.namespace), podSelector: { matchLabels: dns.podLabels } };
  const nodeLocal: Rule[] = dns.nodeLocalAddress ? [{ ipBlock: { cidr: `${dns.nodeLocalAddress}/32` } }] : [];
  return { to: [kubeDns, ...nodeLocal], ports: [{ protocol: 'UDP', port: 53 }, tcp(53)] };
}

export class NetworkPolicies extends pulumi.ComponentResource {
  readonly policies: k8s.networking.v1.NetworkPolicy[] = [];

  constructor(name: string, args: NetworkPoliciesArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ai-gateway:infra:NetworkPolicies', name, {}, opts);
    const policy = (suffix: string, spec: k8s.types.input.networking.v1.NetworkPolicySpec) =>
      this.policies.push(
        new k8s.networking.v1.NetworkPolicy(`${name}-${suffix}`, { metadata: { name: `${APP}-${suffix}`, namespace: args.namespace, labels: args.labels }, spec }, { parent: this }),
      );

    policy('default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] });

    const gatewayPods = { podSelector: { matchLabels: selectorLabels('gateway') } };
    const redisEgress =
      args.redis.mode === 'in-cluster'
        ? { to: [{ podSelector: { matchLabels: selectorLabels('redis') } }], ports: [tcp(REDIS_PORT)] }
        : { to: args.redis.egressCidrs.map((cidr) => ({ ipBlock: { cidr } })), ports: [...new Set([args.redis.port, ...(args.redis.sentinels ?? []).map((s) => s.port)])].map(tcp) };
    policy('gateway', {
      podSelector: gatewayPods.podSelector,
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        { from: [inNamespace(args.routeNamespace)], ports: [tcp(args.gatewayPorts.http)] },
        { from: [inNamespace(args.prometheusNamespace)], ports: [tcp(args.gatewayPorts.metrics)] },
      ],
      egress: [dnsEgress(args.dns), redisEgress, ...upstreamEgress(args.egress), ...(args.extraEgress ?? [])],
    });

    if (args.acmeSolverFrom) {
      policy('acme-http01-solver', {
        podSelector: { matchLabels: ACME_SOLVER_LABELS },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{ from: [inNamespace(args.acmeSolverFrom)], ports: [tcp(ACME_SOLVER_PORT)] }],
        egress: [],
      });
    }

    if (args.redis.mode === 'in-cluster') {
      policy('redis', {
        podSelector: { matchLabels: selectorLabels('redis') },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{ from: [gatewayPods], ports: [tcp(REDIS_PORT)] }],
        egress: [],
      });
    }
    this.registerOutputs({});
  }
}
