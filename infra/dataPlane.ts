/**
 * Where Gateway traffic really comes from (stack key `route.dataPlane`, required with Gateway API):
 * the peers the gateway's NetworkPolicy admits to its HTTP port, and what an implementation needs
 * beyond a NetworkPolicy. Pure; the components render what these return.
 *
 *   namespace      proxy pods in a namespace (optionally only those with podLabels)
 *   cidrs          traffic from address ranges (a load balancer that is not a pod)
 *   envoy-gateway  Envoy Gateway's proxies: envoy-gateway-system by default, the pods labelled
 *                  gateway.envoyproxy.io/owning-gateway-{name,namespace} for the parent Gateway
 *                  (the labels Envoy Gateway's docs select its proxy Service by, "Customize EnvoyProxy")
 *   cilium         Cilium's Gateway API: traffic arrives as the reserved `ingress` identity, which no
 *                  namespace selector matches; a CiliumNetworkPolicy with `fromEntities: [ingress]`
 *                  admits it (docs.cilium.io, policy language, entity "ingress"; cilium/cilium#25665)
 *   gke            GKE Gateway: Google Front Ends and health checkers come from 35.191.0.0/16 and
 *                  130.211.0.0/22; regional and internal classes from the VPC's proxy-only subnet
 *                  (GKE "Deploying Gateways": those classes require it). GKE health-checks `/` unless a
 *                  HealthCheckPolicy (networking.gke.io/v1) says otherwise; the gateway answers `/` with
 *                  404, so the policy points the check at /ready.
 */
import { z } from 'zod';
import { cidr, k8sName, labels } from './primitives';

export const GKE_FRONTEND_RANGES = ['35.191.0.0/16', '130.211.0.0/22'];
export const ENVOY_GATEWAY_NAMESPACE = 'envoy-gateway-system';
const NS_LABEL = 'kubernetes.io/metadata.name';

export const dataPlaneSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('namespace'), namespace: k8sName, podLabels: labels.optional() }).strict(),
  z.object({ kind: z.literal('cidrs'), cidrs: z.array(cidr).min(1) }).strict(),
  z.object({ kind: z.literal('envoy-gateway'), namespace: k8sName.default(ENVOY_GATEWAY_NAMESPACE) }).strict(),
  z.object({ kind: z.literal('cilium') }).strict(),
  z
    .object({
      kind: z.literal('gke'),
      /** The VPC's proxy-only subnet(s): required for regional and internal GatewayClasses. */
      proxyOnlySubnetCidrs: z.array(cidr).default([]),
      healthCheckPath: z
        .string()
        .regex(/^\/[A-Za-z0-9/\-._~]*$/)
        .default('/ready'),
    })
    .strict(),
]);

export type DataPlane = z.output<typeof dataPlaneSchema>;

/** The parent Gateway, for presets that select its own proxies. */
export interface GatewayRef {
  name: string;
  namespace: string;
}

export type Peer = { namespaceSelector?: object; podSelector?: object; ipBlock?: { cidr: string } };

const inNamespace = (ns: string) => ({ namespaceSelector: { matchLabels: { [NS_LABEL]: ns } } });

/** NetworkPolicy peers for the data plane; empty for Cilium, whose traffic a NetworkPolicy cannot name. */
export function dataPlanePeers(dp: DataPlane, gateway: GatewayRef): Peer[] {
  switch (dp.kind) {
    case 'namespace':
      return [{ ...inNamespace(dp.namespace), ...(dp.podLabels ? { podSelector: { matchLabels: dp.podLabels } } : {}) }];
    case 'cidrs':
      return dp.cidrs.map((c) => ({ ipBlock: { cidr: c } }));
    case 'envoy-gateway':
      return [{ ...inNamespace(dp.namespace), podSelector: { matchLabels: envoyGatewayProxyLabels(gateway) } }];
    case 'cilium':
      return [];
    case 'gke':
      return [...GKE_FRONTEND_RANGES, ...dp.proxyOnlySubnetCidrs].map((c) => ({ ipBlock: { cidr: c } }));
  }
}

export const envoyGatewayProxyLabels = (g: GatewayRef) => ({ 'gateway.envoyproxy.io/owning-gateway-name': g.name, 'gateway.envoyproxy.io/owning-gateway-namespace': g.namespace });

/** The namespace the data plane names, for the render's peer checks (infra/validate.ts). */
export function dataPlaneNamespace(dp: DataPlane | undefined): string | undefined {
  return dp && (dp.kind === 'namespace' || dp.kind === 'envoy-gateway') ? dp.namespace : undefined;
}

/** CiliumNetworkPolicy spec: pods selected by `pods` accept `ports` from the `ingress` entity (Cilium's Gateway/Ingress Envoy). */
export function ciliumIngressSpec(pods: Record<string, string>, ports: number[]) {
  return {
    endpointSelector: { matchLabels: pods },
    ingress: [{ fromEntities: ['ingress'], toPorts: [{ ports: ports.map((p) => ({ port: String(p), protocol: 'TCP' })) }] }],
  };
}

/** HealthCheckPolicy spec (networking.gke.io/v1) pointing GKE's load-balancer health check at `path` on the Service's pods. */
export function gkeHealthCheckSpec(service: string, path: string, port: number) {
  return {
    default: { config: { type: 'HTTP', httpHealthCheck: { portSpecification: 'USE_FIXED_PORT', port, requestPath: path } } },
    targetRef: { group: '', kind: 'Service', name: service },
  };
}
