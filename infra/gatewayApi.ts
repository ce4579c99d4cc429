/**
 * Gateway API objects as plain data (pure; unit-tested against the Gateway API and cert-manager schemas):
 * the HTTPRoute that sends /v1 to the gateway (and a canary share by backendRefs weights), a
 * Gateway of the stack's own with an HTTPS listener whose certificate cert-manager issues, and
 * the ACME Issuer whose HTTP-01 solver fits the route kind.
 *
 * HTTPRoute `timeouts` (request, backendRequest) are in Gateway API's Standard channel since v1.2.0.
 */
import { APP } from './common';
import { RouteConfig, servesGatewayApi, servesIngress } from './config';
import { GatewayRef, Peer, dataPlanePeers } from './dataPlane';

export const GATEWAY_API = 'gateway.networking.k8s.io';
export const GATEWAY_API_VERSION = `${GATEWAY_API}/v1`;
/** Listener names of a Gateway the stack creates. */
export const LISTENERS = { http: 'http', https: 'https' } as const;
/** The label cert-manager puts on its HTTP-01 solver pods, and the port they serve the token on. */
export const ACME_SOLVER_LABELS = { 'acme.cert-manager.io/http01-solver': 'true' };
export const ACME_SOLVER_PORT = 8089;

export interface ParentRef {
  group: string;
  kind: 'Gateway';
  name: string;
  namespace: string;
  sectionName?: string;
}

export interface Backend {
  service: string;
  port: number;
}

/** The Gateway the HTTPRoute attaches to: the shared one, or the stack's own HTTPS listener. */
export function parentRefFor(route: RouteConfig, namespace: string, ownGateway: string): ParentRef {
  const shared = route.gateway.parentRef;
  if (shared) return { group: GATEWAY_API, kind: 'Gateway', name: shared.name, namespace: shared.namespace, ...(shared.sectionName ? { sectionName: shared.sectionName } : {}) };
  return { group: GATEWAY_API, kind: 'Gateway', name: ownGateway, namespace, sectionName: LISTENERS.https };
}

/** Gateway API Duration (GEP-2257), e.g. 3600s. */
const duration = (seconds: number) => `${seconds}s`;

/**
 * The HTTPRoute spec: one rule for /v1. With a canary of weight w (1..99) the rule's backendRefs
 * split 100-w / w; without one (or weight 0) there is a single backendRef and no weight at all, so
 * a rollback renders exactly the no-canary object.
 */
export function httpRouteSpec(args: { parentRef: ParentRef; host: string; stable: Backend; canary?: Backend & { weight: number }; streamTimeoutSeconds: number }) {
  const ref = (b: Backend, weight?: number) => ({ group: '', kind: 'Service', name: b.service, port: b.port, ...(weight === undefined ? {} : { weight }) });
  const canary = args.canary && args.canary.weight > 0 ? args.canary : undefined;
  const backendRefs = canary ? [ref(args.stable, 100 - canary.weight), ref(canary, canary.weight)] : [ref(args.stable)];
  const timeout = duration(args.streamTimeoutSeconds);
  return {
    parentRefs: [args.parentRef],
    hostnames: [args.host],
    rules: [
      {
        matches: [{ path: { type: 'PathPrefix', value: '/v1' } }],
        backendRefs,
        // A stream lasts as long as the model writes: the whole exchange (request) and each call to a pod
        // (backendRequest, which must not exceed request) get the stack's stream timeout.
        timeouts: { request: timeout, backendRequest: timeout },
      },
    ],
  };
}

/** Plain HTTP on the stack's own Gateway only redirects to HTTPS (the HTTP-01 solver's own route is more specific). */
export function httpsRedirectSpec(args: { namespace: string; gateway: string; host: string }) {
  return {
    parentRefs: [{ group: GATEWAY_API, kind: 'Gateway', name: args.gateway, namespace: args.namespace, sectionName: LISTENERS.http }],
    hostnames: [args.host],
    rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', statusCode: 301 } }] }],
  };
}

export interface IssuerRef {
  kind: 'ClusterIssuer' | 'Issuer';
  name: string;
}

/** The cert-manager annotation that asks for a certificate from this issuer (on an Ingress or a Gateway). */
export const issuerAnnotation = (issuer: IssuerRef): Record<string, string> =>
  issuer.kind === 'ClusterIssuer' ? { 'cert-manager.io/cluster-issuer': issuer.name } : { 'cert-manager.io/issuer': issuer.name };

/** A Gateway of the stack's own: HTTP (ACME challenges, redirect) and HTTPS with the certificate cert-manager writes. */
export function gatewaySpec(args: { className: string; host: string; tlsSecretName: string }) {
  const allowedRoutes = { namespaces: { from: 'Same' } };
  return {
    gatewayClassName: args.className,
    listeners: [
      { name: LISTENERS.http, protocol: 'HTTP', port: 80, hostname: args.host, allowedRoutes },
      {
        name: LISTENERS.https,
        protocol: 'HTTPS',
        port: 443,
        hostname: args.host,
        tls: { mode: 'Terminate', certificateRefs: [{ group: '', kind: 'Secret', name: args.tlsSecretName }] },
        allowedRoutes,
      },
    ],
  };
}

/** An ACME Issuer in the stack's namespace whose HTTP-01 solver routes through this stack's own route. */
export function acmeIssuerSpec(args: { email: string; server: string; accountSecret: string; solver: { ingressClassName: string } | { gateway: ParentRef } }) {
  const http01 =
    'gateway' in args.solver ? { gatewayHTTPRoute: { parentRefs: [{ ...args.solver.gateway, sectionName: LISTENERS.http }] } } : { ingress: { ingressClassName: args.solver.ingressClassName } };
  return { acme: { email: args.email, server: args.server, privateKeySecretRef: { name: args.accountSecret }, solvers: [{ http01 }] } };
}

/** Who may reach a set of pods: NetworkPolicy peers, and whether Cilium's `ingress` entity needs a CiliumNetworkPolicy too. */
export interface Admission {
  peers: Peer[];
  ciliumIngress: boolean;
}

const nginxPeer = (route: RouteConfig): Peer => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': route.ingress.controllerNamespace } } });

/** The Gateway the route attaches to, as the data-plane presets name it. */
export function parentGateway(route: RouteConfig, namespace: string): GatewayRef {
  const shared = route.gateway.parentRef;
  return shared ? { name: shared.name, namespace: shared.namespace } : { name: APP, namespace };
}

function gatewayAdmission(route: RouteConfig, namespace: string): Admission {
  const dp = route.dataPlane!;
  return { peers: dataPlanePeers(dp, parentGateway(route, namespace)), ciliumIngress: dp.kind === 'cilium' };
}

/**
 * Who forwards public traffic to the gateway's HTTP port: the ingress-nginx controller, the Gateway's
 * data plane, or both during a transition (so DNS can point at either while it moves).
 */
export function routeAdmission(route: RouteConfig, namespace: string): Admission {
  const nginx: Admission = { peers: servesIngress(route) ? [nginxPeer(route)] : [], ciliumIngress: false };
  if (!servesGatewayApi(route)) return nginx;
  const gw = gatewayAdmission(route, namespace);
  return { peers: [...nginx.peers, ...gw.peers], ciliumIngress: gw.ciliumIngress };
}

/**
 * Where HTTP-01 solver traffic comes from, when this namespace gets a Certificate whose issuer
 * proves the host over HTTP-01: through nginx while the Ingress serves the host (during a transition
 * DNS still points there), else through the stack's own Gateway. A shared Gateway's certificate lives
 * with that Gateway; DNS-01 needs no inbound traffic.
 */
export function acmeSolverAdmission(route: RouteConfig, namespace: string): Admission | undefined {
  const http01 = !!route.tls.acme || (!!route.tls.clusterIssuer && route.tls.challenge === 'http-01');
  if (!http01) return undefined;
  if (servesIngress(route)) return { peers: [nginxPeer(route)], ciliumIngress: false };
  return route.gateway.create ? gatewayAdmission(route, namespace) : undefined;
}

// ---------------------------------------------------------------- readiness

/**
 * pulumi-kubernetes waits for these before it reports the object created (annotation
 * `pulumi.com/waitFor`, pulumi/pulumi-kubernetes#3134: `condition=Type[=Value]` or
 * `jsonpath={expr}=Value` in `kubectl get -o jsonpath` syntax; a JSON array of them is ANDed,
 * pulumi/pulumi-kubernetes#3521). So `pulumi up` fails, after its timeout, when the Gateway does
 * not accept the route, its backends do not resolve, or the certificate is never issued.
 * An HTTPRoute's conditions are per parent (status.parents[].conditions); the route has one parent.
 */
export const WAIT_FOR = 'pulumi.com/waitFor';
export const ROUTE_CONDITIONS = ['Accepted', 'ResolvedRefs'] as const;
export const routeWaitFor = () => JSON.stringify(ROUTE_CONDITIONS.map((t) => `jsonpath={.status.parents[0].conditions[?(@.type=="${t}")].status}=True`));
export const CERTIFICATE_WAIT_FOR = 'condition=Ready';

/** A cert-manager Certificate for the stack's own Gateway listener, named like the Secret (as cert-manager's gateway-shim names it). */
export function certificateSpec(args: { host: string; secretName: string; issuer: IssuerRef }) {
  return { secretName: args.secretName, dnsNames: [args.host], issuerRef: { group: 'cert-manager.io', kind: args.issuer.kind, name: args.issuer.name } };
}
