/**
 * The public route to the gateway, by `route.kind`:
 *   gateway-api   (default) an HTTPRoute attached to a shared Gateway (parentRef) or to a Gateway this
 *                 stack creates (HTTPS listener, certificate from cert-manager); a canary is a weighted
 *                 backendRef of the same rule.
 *   ingress-nginx the nginx Ingress of `ingress.ts` (the canary Ingress is the Canary component's).
 * Either way, an ACME Issuer of the stack's own is created when `route.tls.acme` is set.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { APP } from './common';
import type { RouteConfig } from './config';
import { GATEWAY_API_VERSION, IssuerRef, acmeIssuerSpec, gatewaySpec, httpRouteSpec, httpsRedirectSpec, issuerAnnotation, parentRefFor } from './gatewayApi';
import { GatewayIngress } from './ingress';

export interface PublicRouteArgs {
  namespace: pulumi.Input<string>;
  /** The namespace's name as plain text (parentRefs of the stack's own Gateway). */
  namespaceName: string;
  labels: Record<string, string>;
  route: RouteConfig;
  stable: { service: pulumi.Input<string>; port: number };
  /** Gateway API canary: the share of requests for the canary Service (the Ingress canary is the Canary component's). */
  canary?: { service: pulumi.Input<string>; port: number; weight: number };
  bodyLimitBytes: number;
}

export const ACME_ISSUER = `${APP}-acme`;

/** TLS Secret of a certificate the stack creates: the stack's choice, or the host with dots as dashes. */
export const tlsSecretName = (route: RouteConfig) => route.tls.secretName ?? `${route.host.replace(/\./g, '-')}-tls`.slice(0, 63);

/** The issuer that signs a certificate the stack creates (undefined for a shared Gateway). */
export function issuerOf(route: RouteConfig): IssuerRef | undefined {
  if (route.tls.acme) return { kind: 'Issuer', name: ACME_ISSUER };
  return route.tls.clusterIssuer ? { kind: 'ClusterIssuer', name: route.tls.clusterIssuer } : undefined;
}

/** The settings the stable and canary Ingresses share (ingress-nginx mode). */
export function ingressSettings(route: RouteConfig, namespace: pulumi.Input<string>, bodyLimitBytes: number) {
  return {
    namespace,
    host: route.host,
    className: route.ingress.className,
    issuer: issuerOf(route)!,
    tlsSecretName: tlsSecretName(route),
    bodyLimitBytes,
    readTimeoutSeconds: route.streamTimeoutSeconds,
  };
}

export class PublicRoute extends pulumi.ComponentResource {
  readonly host: string;

  constructor(name: string, args: PublicRouteArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ai-gateway:infra:PublicRoute', name, {}, opts);
    const { route } = args;
    this.host = route.host;
    const meta = (objectName: string, annotations?: Record<string, string>) => ({ name: objectName, namespace: args.namespace, labels: args.labels, ...(annotations ? { annotations } : {}) });
    const custom = (id: string, apiVersion: string, kind: string, metadata: object, spec: pulumi.Input<object>, extra?: pulumi.CustomResourceOptions) =>
      new k8s.apiextensions.CustomResource(id, { apiVersion, kind, metadata, spec }, { parent: this, ...extra });

    const ownGateway = route.kind === 'gateway-api' && route.gateway.create ? APP : undefined;
    if (route.tls.acme && (route.kind === 'ingress-nginx' || ownGateway)) {
      const solver = ownGateway ? { gateway: parentRefFor(route, args.namespaceName, ownGateway) } : { ingressClassName: route.ingress.className };
      custom(`${name}-issuer`, 'cert-manager.io/v1', 'Issuer', meta(ACME_ISSUER), acmeIssuerSpec({ ...route.tls.acme, accountSecret: `${ACME_ISSUER}-account`, solver }));
    }

    if (route.kind === 'ingress-nginx') {
      // Named and aliased as before route.kind existed, so stacks deployed then keep their Ingress (no replacement).
      new GatewayIngress(
        'ingress',
        { ...ingressSettings(route, args.namespace, args.bodyLimitBytes), name: APP, labels: args.labels, serviceName: args.stable.service },
        { parent: this, aliases: [{ parent: pulumi.rootStackResource }] },
      );
      this.registerOutputs({ host: this.host });
      return;
    }

    if (ownGateway) {
      custom(`${name}-gateway`, GATEWAY_API_VERSION, 'Gateway', meta(ownGateway, issuerAnnotation(issuerOf(route)!)), gatewaySpec({ className: route.gateway.create!.className, host: route.host, tlsSecretName: tlsSecretName(route) }));
      custom(`${name}-https-redirect`, GATEWAY_API_VERSION, 'HTTPRoute', meta(`${APP}-https-redirect`), httpsRedirectSpec({ namespace: args.namespaceName, gateway: ownGateway, host: route.host }));
    }
    const parentRef = parentRefFor(route, args.namespaceName, APP);
    const spec = pulumi.all([args.stable.service, args.canary?.service]).apply(([stable, canary]) =>
      httpRouteSpec({
        parentRef,
        host: route.host,
        stable: { service: stable, port: args.stable.port },
        canary: args.canary && canary ? { service: canary, port: args.canary.port, weight: args.canary.weight } : undefined,
        streamTimeoutSeconds: route.streamTimeoutSeconds,
      }),
    );
    custom(name, GATEWAY_API_VERSION, 'HTTPRoute', meta(APP), spec);
    this.registerOutputs({ host: this.host });
  }
}
