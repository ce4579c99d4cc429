/**
 * The public route to the gateway, by `route.kind`:
 *   gateway-api   (default) an HTTPRoute attached to a shared Gateway (parentRef) or to a Gateway this
 *                 stack creates (HTTPS listener, a cert-manager Certificate); a canary is a weighted
 *                 backendRef of the same rule. The HTTPRoute and the Certificate carry
 *                 `pulumi.com/waitFor`, so `pulumi up` fails when the route is not Accepted, its
 *                 backends do not resolve, or the certificate is not Ready (gatewayApi.ts).
 *   ingress-nginx the nginx Ingress of `ingress.ts` (the canary Ingress is the Canary component's).
 *   transition    both, for the release during which DNS moves from nginx to the Gateway.
 * An ACME Issuer of the stack's own is created when `route.tls.acme` is set; on GKE a HealthCheckPolicy
 * per backend Service points the load balancer's health check at /ready; on Envoy Gateway a
 * BackendTrafficPolicy gives each new replica a slow start (dataPlane.ts).
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { APP } from './common';
import { RouteConfig, servesGatewayApi, servesIngress } from './config';
import { ENVOY_GATEWAY_POLICY_VERSION, ENVOY_GATEWAY_POLICY_WAIT_FOR, envoyGatewaySlowStartSpec, gkeHealthCheckSpec } from './dataPlane';
import {
  CERTIFICATE_WAIT_FOR,
  GATEWAY_API_VERSION,
  IssuerRef,
  WAIT_FOR,
  acmeIssuerSpec,
  certificateSpec,
  gatewaySpec,
  httpRouteSpec,
  httpsRedirectSpec,
  parentRefFor,
  routeWaitFor,
} from './gatewayApi';
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
  /** The gateway's container HTTP port (GKE's health check goes to the pods). */
  containerPort: number;
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
    const ownGateway = servesGatewayApi(route) && route.gateway.create ? APP : undefined;
    if (route.tls.acme && (servesIngress(route) || ownGateway)) {
      // While the Ingress serves the host (ingress-nginx, transition) DNS points at nginx: HTTP-01 is answered there.
      const solver = servesIngress(route) ? { ingressClassName: route.ingress.className } : { gateway: parentRefFor(route, args.namespaceName, ownGateway!) };
      this.custom(`${name}-issuer`, 'cert-manager.io/v1', 'Issuer', this.meta(args, ACME_ISSUER), acmeIssuerSpec({ ...route.tls.acme, accountSecret: `${ACME_ISSUER}-account`, solver }));
    }
    if (servesIngress(route)) {
      // Named and aliased as before route.kind existed, so stacks deployed then keep their Ingress (no replacement).
      new GatewayIngress(
        'ingress',
        { ...ingressSettings(route, args.namespace, args.bodyLimitBytes), name: APP, labels: args.labels, serviceName: args.stable.service },
        { parent: this, aliases: [{ parent: pulumi.rootStackResource }] },
      );
    }
    if (servesGatewayApi(route)) this.gatewayApi(name, args, ownGateway);
    this.registerOutputs({ host: this.host });
  }

  private meta(args: PublicRouteArgs, objectName: string, annotations?: Record<string, string>) {
    return { name: objectName, namespace: args.namespace, labels: args.labels, ...(annotations ? { annotations } : {}) };
  }

  private custom(id: string, apiVersion: string, kind: string, metadata: object, spec: pulumi.Input<object>) {
    return new k8s.apiextensions.CustomResource(id, { apiVersion, kind, metadata, spec }, { parent: this });
  }

  /** The HTTPRoute (and the stack's own Gateway with its Certificate and redirect, and the data plane's policies). */
  private gatewayApi(name: string, args: PublicRouteArgs, ownGateway: string | undefined) {
    const { route } = args;
    if (ownGateway) {
      const secretName = tlsSecretName(route);
      // During a transition the Ingress's cert-manager annotation already keeps a Certificate of this name
      // for the same host and Secret (ingress-shim names it after the Secret); a second one would conflict.
      if (!servesIngress(route))
        this.custom(
          `${name}-certificate`,
          'cert-manager.io/v1',
          'Certificate',
          this.meta(args, secretName, { [WAIT_FOR]: CERTIFICATE_WAIT_FOR }),
          certificateSpec({ host: route.host, secretName, issuer: issuerOf(route)! }),
        );
      this.custom(
        `${name}-gateway`,
        GATEWAY_API_VERSION,
        'Gateway',
        this.meta(args, ownGateway),
        gatewaySpec({ className: route.gateway.create!.className, host: route.host, tlsSecretName: secretName }),
      );
      this.custom(
        `${name}-https-redirect`,
        GATEWAY_API_VERSION,
        'HTTPRoute',
        this.meta(args, `${APP}-https-redirect`),
        httpsRedirectSpec({ namespace: args.namespaceName, gateway: ownGateway, host: route.host }),
      );
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
    this.custom(name, GATEWAY_API_VERSION, 'HTTPRoute', this.meta(args, APP, { [WAIT_FOR]: routeWaitFor() }), spec);
    this.dataPlanePolicies(name, args);
  }

  /** Envoy Gateway's slow start for the HTTPRoute; GKE's health check per backend Service. */
  private dataPlanePolicies(name: string, args: PublicRouteArgs) {
    const dp = args.route.dataPlane;
    if (dp?.kind === 'envoy-gateway' && dp.slowStartSeconds > 0)
      this.custom(
        `${name}-slow-start`,
        ENVOY_GATEWAY_POLICY_VERSION,
        'BackendTrafficPolicy',
        this.meta(args, APP, { [WAIT_FOR]: ENVOY_GATEWAY_POLICY_WAIT_FOR }),
        envoyGatewaySlowStartSpec(APP, dp.slowStartSeconds),
      );
    if (dp?.kind !== 'gke') return;
    const backends: [string, pulumi.Input<string>][] = [['stable', args.stable.service], ...(args.canary ? [['canary', args.canary.service] as [string, pulumi.Input<string>]] : [])];
    for (const [track, service] of backends) {
      const spec = pulumi.output(service).apply((svc) => gkeHealthCheckSpec(svc, dp.healthCheckPath, args.containerPort));
      this.custom(`${name}-healthcheck-${track}`, 'networking.gke.io/v1', 'HealthCheckPolicy', this.meta(args, track === 'stable' ? APP : `${APP}-${track}`), spec);
    }
  }
}
