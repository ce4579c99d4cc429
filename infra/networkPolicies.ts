/**
 * NetworkPolicies: everything in the namespace is denied unless a policy below allows it.
 *   gateway in:  HTTP from the route's data plane (infra/dataPlane.ts: the Gateway's proxies by namespace and labels,
 *                CIDRs, a preset; the ingress-nginx controller; both during a transition); on Cilium also a
 *                CiliumNetworkPolicy admitting the `ingress` entity; metrics from Prometheus' namespace.
 *   gateway out: DNS (kube-dns pods by label, NodeLocal DNSCache's address), Redis, and what the providers
 *                need (egress.ts): in-cluster Services by namespace and port, `egress.extra` entries, and
 *                TCP 443 to public addresses only (private, link-local and CGNAT ranges excluded, which keeps
 *                the cloud metadata endpoint and cluster-internal services out of reach); plus the
 *                rules the stack adds (the OpenTelemetry collector's namespace or address, on its port).
 *   redis in:    the Redis port from gateway pods only; redis out: nothing.
 *   ACME solver: cert-manager's HTTP-01 solver pods, from the route's data plane on 8089, while a
 *                certificate of this namespace is proved over HTTP-01.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { APP, REDIS_PORT, selectorLabels } from './common';
import type { EgressConfig } from './config';
import { EgressPlan, NON_PUBLIC_RANGES } from './egress';
import { ciliumIngressSpec } from './dataPlane';
import { ACME_SOLVER_LABELS, ACME_SOLVER_PORT, Admission } from './gatewayApi';

export { NON_PUBLIC_RANGES };

type Rule = k8s.types.input.networking.v1.NetworkPolicyPeer;

export interface NetworkPoliciesArgs {
  namespace: pulumi.Input<string>;
  labels: Record<string, string>;
  gatewayPorts: { http: number; metrics: number };
  /** Who forwards public traffic (Gateway data plane, ingress controller, or both): gatewayApi.ts routeAdmission. */
  route: Admission;
  /** Who reaches cert-manager's HTTP-01 solver, when a certificate of this namespace uses HTTP-01. */
  acmeSolver?: Admission;
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

/** DNS for any pod of the stack: kube-dns pods by label, and NodeLocal DNSCache's address when set. */
export function dnsEgress(dns: EgressConfig['dns']): k8s.types.input.networking.v1.NetworkPolicyEgressRule {
  const kubeDns: Rule = { ...inNamespace(dns.namespace), podSelector: { matchLabels: dns.podLabels } };
  const nodeLocal: Rule[] = dns.nodeLocalAddress ? [{ ipBlock: { cidr: `${dns.nodeLocalAddress}/32` } }] : [];
  return { to: [kubeDns, ...nodeLocal], ports: [{ protocol: 'UDP', port: 53 }, tcp(53)] };
}

export class NetworkPolicies extends pulumi.ComponentResource {
  readonly policies: k8s.networking.v1.NetworkPolicy[] = [];

  constructor(name: string, args: NetworkPoliciesArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ai-gateway:infra:NetworkPolicies', name, {}, opts);
    const policy = (suffix: string, spec: k8s.types.input.networking.v1.NetworkPolicySpec) =>
      this.policies.push(new k8s.networking.v1.NetworkPolicy(`${name}-${suffix}`, { metadata: { name: `${APP}-${suffix}`, namespace: args.namespace, labels: args.labels }, spec }, { parent: this }));

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
        ...(args.route.peers.length ? [{ from: args.route.peers, ports: [tcp(args.gatewayPorts.http)] }] : []),
        { from: [inNamespace(args.prometheusNamespace)], ports: [tcp(args.gatewayPorts.metrics)] },
      ],
      egress: [dnsEgress(args.dns), redisEgress, ...upstreamEgress(args.egress), ...(args.extraEgress ?? [])],
    });

    if (args.acmeSolver) {
      policy('acme-http01-solver', {
        podSelector: { matchLabels: ACME_SOLVER_LABELS },
        policyTypes: ['Ingress', 'Egress'],
        ingress: args.acmeSolver.peers.length ? [{ from: args.acmeSolver.peers, ports: [tcp(ACME_SOLVER_PORT)] }] : [],
        egress: [],
      });
    }
    this.ciliumPolicies(name, args);

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

  /** Cilium's Gateway traffic is the `ingress` entity: CiliumNetworkPolicies admit it (additive to the NetworkPolicies above). */
  private ciliumPolicies(name: string, args: NetworkPoliciesArgs) {
    const cnp = (suffix: string, spec: object) =>
      new k8s.apiextensions.CustomResource(
        `${name}-${suffix}`,
        { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: `${APP}-${suffix}`, namespace: args.namespace, labels: args.labels }, spec },
        { parent: this },
      );
    if (args.route.ciliumIngress) cnp('gateway-from-cilium-ingress', ciliumIngressSpec(selectorLabels('gateway'), [args.gatewayPorts.http]));
    if (args.acmeSolver?.ciliumIngress) cnp('acme-solver-from-cilium-ingress', ciliumIngressSpec(ACME_SOLVER_LABELS, [ACME_SOLVER_PORT]));
  }
}
