/**
 * Gateway API objects as plain data (pure; unit-tested against the Gateway API and cert-manager schemas):
 * the HTTPRoute that sends /v1 to the gateway (and a canary share by backendRefs weights), a
 * Gateway of the stack's own with an HTTPS listener whose certificate cert-manager issues, and
 * the ACME Issuer whose HTTP-01 solver fits the route kind.
 *
 * HTTPRoute `timeouts` (request, backendRequest) are in Gateway API's Standard channel since v1.2.0.
 */
import type { RouteConfig } from './config';

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
    'gateway' in args.solver
      ? { gatewayHTTPRoute: { parentRefs: [{ ...args.solver.gateway, sectionName: LISTENERS.http }] } }
      : { ingress: { ingressClassName: args.solver.ingressClassName } };
  return { acme: { email: args.email, server: args.server, privateKeySecretRef: { name: args.accountSecret }, solvers: [{ http01 }] } };
}

/**
 * Where HTTP-01 solver traffic comes from, when this namespace gets a Certificate whose issuer
 * proves the host over HTTP-01: the ingress controller's or the Gateway proxies' namespace.
 * A shared Gateway's certificate lives with that Gateway; DNS-01 needs no inbound traffic.
 */
export function acmeSolverSource(route: RouteConfig): string | undefined {
  const http01 = !!route.tls.acme || (!!route.tls.clusterIssuer && route.tls.challenge === 'http-01');
  if (!http01) return undefined;
  if (route.kind === 'ingress-nginx') return route.ingress.controllerNamespace;
  return route.gateway.create ? route.gateway.dataPlaneNamespace : undefined;
}

/** The namespace whose pods forward public traffic to the gateway's HTTP port. */
export function routeSource(route: RouteConfig): string {
  if (route.kind === 'ingress-nginx') return route.ingress.controllerNamespace;
  return route.gateway.dataPlaneNamespace ?? route.gateway.parentRef!.namespace;
}
