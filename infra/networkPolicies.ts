/**
 * NetworkPolicies: everything in the namespace is denied unless a policy below allows it.
 *   gateway in:  HTTP from the ingress controller's namespace; metrics from Prometheus' namespace.
 *   gateway out: DNS, Redis, and TCP 443 to public addresses only (private, link-local and CGNAT ranges excluded,
 *                which keeps the cloud metadata endpoint and cluster-internal services out of reach); plus the
 *                rules the stack adds (the OpenTelemetry collector's namespace or address, on its port).
 *   redis in:    the Redis port from gateway pods only; redis out: nothing.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { APP, REDIS_PORT, selectorLabels } from './common';

export const NON_PUBLIC_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '100.64.0.0/10', '127.0.0.0/8'];
const DNS_NAMESPACE = 'kube-system';

type Rule = k8s.types.input.networking.v1.NetworkPolicyPeer;

export interface NetworkPoliciesArgs {
  namespace: pulumi.Input<string>;
  labels: Record<string, string>;
  gatewayPorts: { http: number; metrics: number };
  ingressControllerNamespace: string;
  prometheusNamespace: string;
  /** In-cluster Redis pods, or the CIDRs and port of a managed Redis. */
  redis: { mode: 'in-cluster' } | { mode: 'external'; egressCidrs: string[]; port: number };
  /** More gateway egress rules (infra/telemetry.ts: the collector). */
  extraEgress?: k8s.types.input.networking.v1.NetworkPolicyEgressRule[];
}

const inNamespace = (name: string): Rule => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': name } } });
const tcp = (port: number) => ({ protocol: 'TCP', port });

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
        : { to: args.redis.egressCidrs.map((cidr) => ({ ipBlock: { cidr } })), ports: [tcp(args.redis.port)] };
    policy('gateway', {
      podSelector: gatewayPods.podSelector,
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        { from: [inNamespace(args.ingressControllerNamespace)], ports: [tcp(args.gatewayPorts.http)] },
        { from: [inNamespace(args.prometheusNamespace)], ports: [tcp(args.gatewayPorts.metrics)] },
      ],
      egress: [
        { to: [inNamespace(DNS_NAMESPACE)], ports: [{ protocol: 'UDP', port: 53 }, tcp(53)] },
        redisEgress,
        { to: [{ ipBlock: { cidr: '0.0.0.0/0', except: NON_PUBLIC_RANGES } }], ports: [tcp(443)] },
        ...(args.extraEgress ?? []),
      ],
    });

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
