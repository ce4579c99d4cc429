/**
 * Pointing the gateway at an OpenTelemetry collector (stack key `telemetry`): the standard
 * OTEL_* variables for its pods, and the egress rule that lets them reach the collector,
 * derived from the endpoint URL. Pure functions; the components apply what they return.
 */
import type * as k8s from '@pulumi/kubernetes';
import type { StackConfig } from './config';
import { collectorPeer } from './egress';

type Telemetry = NonNullable<StackConfig['telemetry']>;

export { collectorPeer, type CollectorPeer } from './egress';

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
