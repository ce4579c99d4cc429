/**
 * Where Gateway traffic really comes from (stack key `route.dataPlane`, required with Gateway API):
 * the peers the gateway's NetworkPolicy admits to its HTTP port, and what an implementation needs
 * beyond a NetworkPolicy. Pure; the components render what these return.
 *
 *   namespace      proxy pods in a namespace (optionally only those with podLabels)
 *   cidrs          traffic from address ranges (a load balancer that is not a pod)
 *   envoy-gateway  Envoy Gateway's proxies: envoy-gateway-system by default, the pods labelled
 *                  gateway.envoyproxy.io/owning-gateway-{name,namespace} for the parent Gateway
 *                  (the labels Envoy Gateway's docs select its proxy Service by, "Customize EnvoyProxy");
 *                  and a BackendTrafficPolicy giving a new replica a slow start (below)
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
/**
 * A replica's first seconds under a full share of traffic are its slowest: V8 has not compiled the
 * request path yet. `npm run bench -- --cold-start` (docs/bench.md, "a new replica's first seconds"):
 * a new gateway process given its full 3,000 requests/s at once had a p99 of 1.17-1.35 s in its first
 * half second and queued for 2.5-5 s; given Envoy's slow-start ramp over 30 s instead, 227-244 ms in
 * its first half second, then mostly under 10 ms, with one window of 103-281 ms when V8's optimising
 * compiler caught up (~10,000 requests in).
 */
export const SLOW_START_SECONDS = 30;
export const ENVOY_GATEWAY_POLICY_VERSION = 'gateway.envoyproxy.io/v1alpha1';
/**
 * `pulumi up` waits until Envoy Gateway has accepted the policy for its Gateway (the policy status's
 * ancestor, Gateway API PolicyStatus), so a policy the controller refuses fails the update.
 */
export const ENVOY_GATEWAY_POLICY_WAIT_FOR = 'jsonpath={.status.ancestors[0].conditions[?(@.type=="Accepted")].status}=True';
const NS_LABEL = 'kubernetes.io/metadata.name';

export const dataPlaneSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('namespace'), namespace: k8sName, podLabels: labels.optional() }).strict(),
  z.object({ kind: z.literal('cidrs'), cidrs: z.array(cidr).min(1) }).strict(),
  z
    .object({
      kind: z.literal('envoy-gateway'),
      namespace: k8sName.default(ENVOY_GATEWAY_NAMESPACE),
      /** A new replica's share of requests ramps up over this many seconds (0: no BackendTrafficPolicy). */
      slowStartSeconds: z.number().int().min(0).max(3600).default(SLOW_START_SECONDS),
    })
    .strict(),
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

/**
 * BackendTrafficPolicy spec (Envoy Gateway, gateway.envoyproxy.io/v1alpha1) for the stack's HTTPRoute:
 * each new endpoint (a replica added by the HPA or a rolling update) gets a share of requests that
 * grows linearly from Envoy's minimum (10 % of its weight) to all of it over `seconds`
 * (`loadBalancer.slowStart.window`; Envoy's slow start, which Envoy Gateway supports for RoundRobin,
 * LeastRequest and BackendUtilization only). LeastRequest is Envoy Gateway's default and what long
 * streams want: a replica holding fewer open requests gets the next one. `mergeType: StrategicMerge`
 * (Envoy Gateway 1.4 and later) merges this into a BackendTrafficPolicy the platform team attached to
 * the Gateway instead of replacing it: without it the most specific policy wins whole, and the route
 * would lose the Gateway's own timeouts, retries or circuit breakers.
 */
export function envoyGatewaySlowStartSpec(route: string, seconds: number) {
  return {
    targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: route }],
    mergeType: 'StrategicMerge',
    loadBalancer: { type: 'LeastRequest', slowStart: { window: `${seconds}s` } },
  };
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
