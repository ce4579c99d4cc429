/**
 * The public entry: an nginx Ingress for /v1 with TLS from cert-manager, the gateway's body-size
 * limit, and the settings Server-Sent Events need (no response buffering, long read timeouts).
 * Only the HTTP port is routed; /metrics lives on its own port and is never exposed.
 *
 * With `canaryWeight`, the same component renders the canary Ingress: same host, the
 * nginx canary annotations, and the TLS section without the cert-manager annotation (the stable
 * Ingress owns the certificate; two owners of one Secret would fight).
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { IssuerRef, issuerAnnotation } from './gatewayApi';

const NGINX = 'nginx.ingress.kubernetes.io';

export interface GatewayIngressArgs {
  namespace: pulumi.Input<string>;
  name: string;
  labels: Record<string, string>;
  host: string;
  className: string;
  /** The cert-manager issuer of the certificate (a ClusterIssuer, or the stack's own ACME Issuer). */
  issuer: IssuerRef;
  tlsSecretName: string;
  serviceName: pulumi.Input<string>;
  /** The gateway's server.body_limit_bytes: nginx refuses larger bodies before they reach a pod. */
  bodyLimitBytes: number;
  readTimeoutSeconds: number;
  /** Percent of requests for this Ingress's Service, making it an nginx canary Ingress. */
  canaryWeight?: number;
}

export function ingressAnnotations(args: Pick<GatewayIngressArgs, 'issuer' | 'bodyLimitBytes' | 'readTimeoutSeconds' | 'canaryWeight'>): Record<string, string> {
  const timeout = String(args.readTimeoutSeconds);
  return {
    ...(args.canaryWeight === undefined ? issuerAnnotation(args.issuer) : { [`${NGINX}/canary`]: 'true', [`${NGINX}/canary-weight`]: String(args.canaryWeight) }),
    [`${NGINX}/force-ssl-redirect`]: 'true',
    [`${NGINX}/proxy-body-size`]: `${Math.ceil(args.bodyLimitBytes / 1024)}k`,
    // SSE: pass each chunk on as it arrives, and keep idle streams open.
    [`${NGINX}/proxy-buffering`]: 'off',
    [`${NGINX}/proxy-http-version`]: '1.1',
    [`${NGINX}/proxy-read-timeout`]: timeout,
    [`${NGINX}/proxy-send-timeout`]: timeout,
  };
}

export class GatewayIngress extends pulumi.ComponentResource {
  readonly ingress: k8s.networking.v1.Ingress;
  readonly host: string;

  constructor(name: string, args: GatewayIngressArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ai-gateway:infra:Ingress', name, {}, opts);
    this.host = args.host;
    this.ingress = new k8s.networking.v1.Ingress(
      name,
      {
        metadata: { name: args.name, namespace: args.namespace, labels: args.labels, annotations: ingressAnnotations(args) },
        spec: {
          ingressClassName: args.className,
          tls: [{ hosts: [args.host], secretName: args.tlsSecretName }],
          rules: [
            {
              host: args.host,
              http: {
                paths: [{ path: '/v1', pathType: 'Prefix', backend: { service: { name: args.serviceName, port: { name: 'http' } } } }],
              },
            },
          ],
        },
      },
      { parent: this },
    );
    this.registerOutputs({ host: this.host });
  }
}
