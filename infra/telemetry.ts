/**
 * Pointing the gateway at an OpenTelemetry collector (stack key `telemetry`): the standard
 * OTEL_* variables for its pods, and the egress rule that lets them reach the collector,
 * derived from the endpoint URL. Pure functions; the components apply what they return.
 */
import type * as k8s from '@pulumi/kubernetes';
import { isIP } from 'node:net';
import type { StackConfig } from './config';
import { classify } from './egress';

type Telemetry = NonNullable<StackConfig['telemetry']>;

/** Who the collector is, as a NetworkPolicy can name it. */
export type CollectorPeer =
  | { kind: 'namespace'; namespace: string; port: number }
  | { kind: 'ip'; cidr: string; port: number }
  | { kind: 'external'; host: string; port: number };

const BARE_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/**
 * Classified as provider URLs are (egress.ts `classify`), with two collector rules: any IPv4 address
 * is a /32 peer, and a bare Service name is a Service in the gateway's own namespace.
 */
export function collectorPeer(endpoint: string, gatewayNamespace: string, clusterDomain = 'cluster.local'): CollectorPeer {
  const d = classify(endpoint, clusterDomain);
  if (d.kind === 'service') return { kind: 'namespace', namespace: d.namespace, port: d.port };
  if (d.kind === 'address' && isIP(d.host) === 4) return { kind: 'ip', cidr: `${d.host}/32`, port: d.port };
  if (d.kind === 'host' && BARE_NAME.test(d.host)) return { kind: 'namespace', namespace: gatewayNamespace, port: d.port };
  return { kind: 'external', host: new URL(endpoint).hostname, port: d.port };
}

/** The gateway's egress rule to the collector: its namespace, its address, or the configured CIDRs; on its port only. */
export function collectorEgress(t: Telemetry, gatewayNamespace: string, clusterDomain?: string): k8s.types.input.networking.v1.NetworkPolicyEgressRule {
  const peer = collectorPeer(t.otlpEndpoint, gatewayNamespace, clusterDomain);
  const ports = [{ protocol: 'TCP', port: peer.port }];
  if (t.egressCidrs) return { to: t.egressCidrs.map((cidr) => ({ ipBlock: { cidr } })), ports };
  if (peer.kind === 'namespace') return { to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': peer.namespace } } }], ports };
  if (peer.kind === 'ip') return { to: [{ ipBlock: { cidr: peer.cidr } }], ports };
  // The stack schema refuses this combination; kept as a guard for direct callers.
  throw new Error(`telemetry.otlpEndpoint host "${peer.host}" is outside the cluster: set telemetry.egressCidrs`);
}

/** The OTEL_* variables of the gateway container (none without `telemetry`). */
export function telemetryEnv(t: Telemetry | undefined, environment: string, namespace: string): k8s.types.input.core.v1.EnvVar[] {
  if (!t) return [];
  const env: k8s.types.input.core.v1.EnvVar[] = [
    { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: t.otlpEndpoint },
    { name: 'OTEL_SERVICE_NAME', value: 'ai-gateway' },
    { name: 'K8S_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    // $(K8S_POD_NAME) is expanded by the kubelet from the variable defined just above.
    { name: 'OTEL_RESOURCE_ATTRIBUTES', value: `deployment.environment.name=${environment},k8s.namespace.name=${namespace},k8s.pod.name=$(K8S_POD_NAME)` },
  ];
  if (t.sampleRatio < 1) {
    env.push({ name: 'OTEL_TRACES_SAMPLER', value: 'parentbased_traceidratio' }, { name: 'OTEL_TRACES_SAMPLER_ARG', value: String(t.sampleRatio) });
  }
  return env;
}
