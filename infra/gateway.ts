/**
 * The gateway workload: Deployment, Service and, for the stable track, PodDisruptionBudget and
 * HorizontalPodAutoscaler. The canary is a second instance of this component with track "canary".
 */
import { NODE_FLAGS } from '../service/core/runtime-flags';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { REDIS_CA_DIR } from './redisTls';
import { APP, CONFIG_DIR, CONFIG_FILE, GATEWAY_UID, Track, containerSecurityContext, objectLabels, podSecurityContext, selectorLabels, serviceHost } from './common';

export interface Resources {
  requests: { cpu: string; memory: string };
  limits: { cpu: string; memory: string };
}

export interface AutoscalingArgs {
  maxReplicas: number;
  targetCPUUtilizationPercent: number;
  targetMemoryUtilizationPercent: number;
}

export interface GatewayWorkloadArgs {
  namespace: pulumi.Input<string>;
  stack: string;
  track: Track;
  image: pulumi.Input<string>;
  /** Fixed replicas, or the HPA minimum when autoscaling is set. */
  replicas: number;
  autoscaling?: AutoscalingArgs;
  /** A PodDisruptionBudget keeps voluntary evictions (node drains) to one pod at a time. */
  disruptionBudget: boolean;
  resources: Resources;
  configMapName: pulumi.Input<string>;
  configChecksum: string;
  secretName: pulumi.Input<string>;
  /**
   * Digest of the Secret's content, so a key rotation rolls the pods too. Deliberately a plain
   * value: marked secret it would turn the whole Deployment spec into [secret] in every preview.
   * It reveals nothing usable: it covers every secret at once, provider API keys among them.
   */
  secretChecksum: string;
  /** The ServiceAccount the pods run as (infra/aws.ts: IRSA or Pod Identity); default the namespace's. */
  serviceAccountName?: pulumi.Input<string>;
  /** Names of registry Secrets for a private image. */
  imagePullSecrets?: string[];
  /** ConfigMap with the managed Redis' CA certificate (infra/redisTls.ts), mounted at REDIS_CA_DIR. */
  redisCaConfigMap?: pulumi.Input<string>;
  ports: { http: number; metrics: number };
  /** The gateway drains this long after SIGTERM (server.shutdown_grace_ms). */
  shutdownGraceMs: number;
  preStopDelaySeconds: number;
  /** Plain environment beyond the config path (the HTTPS proxy settings). */
  extraEnv?: Record<string, string>;
  /** More container variables (the OTEL_* ones when the stack sets `telemetry`). */
  env?: k8s.types.input.core.v1.EnvVar[];
}

const SERVICE_PORT = 80;

/** Kubernetes' grace period must cover the preStop delay, the gateway's own drain, and a margin for exit. */
export const terminationGraceSeconds = (preStopDelaySeconds: number, shutdownGraceMs: number) => preStopDelaySeconds + Math.ceil(shutdownGraceMs / 1000) + 10;

/** The gateway container: its command, ports, environment, probes and mounts. */
function gatewayContainer(args: GatewayWorkloadArgs) {
  return {
    name: 'gateway',
    image: args.image,
    imagePullPolicy: 'IfNotPresent',
    command: ['node', ...NODE_FLAGS, 'dist/service/main.js', '--config', `${CONFIG_DIR}/${CONFIG_FILE}`],
    ports: [
      { name: 'http', containerPort: args.ports.http, protocol: 'TCP' },
      { name: 'metrics', containerPort: args.ports.metrics, protocol: 'TCP' },
    ],
    env: [
      { name: 'GATEWAY_CONFIG', value: `${CONFIG_DIR}/${CONFIG_FILE}` },
      { name: 'NODE_ENV', value: 'production' },
      ...Object.entries(args.extraEnv ?? {}).map(([name, value]) => ({ name, value })),
      ...(args.env ?? []),
    ],
    envFrom: [{ secretRef: { name: args.secretName } }],
    resources: args.resources,
    securityContext: containerSecurityContext(GATEWAY_UID),
    startupProbe: { httpGet: { path: '/health', port: 'http' }, periodSeconds: 2, failureThreshold: 30, timeoutSeconds: 2 },
    livenessProbe: { httpGet: { path: '/health', port: 'http' }, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 2 },
    readinessProbe: { httpGet: { path: '/ready', port: 'http' }, periodSeconds: 5, failureThreshold: 2, timeoutSeconds: 2 },
    // Keep serving while the endpoint is removed from Services and nginx; then SIGTERM starts the drain.
    lifecycle: { preStop: { exec: { command: ['sleep', String(args.preStopDelaySeconds)] } } },
    volumeMounts: [
      { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
      ...(args.redisCaConfigMap ? [{ name: 'redis-ca', mountPath: REDIS_CA_DIR, readOnly: true }] : []),
    ],
  };
}

/** The pod spec: non-root, no service account token, spread over nodes and zones, the gateway container and its volumes. */
function gatewayPodSpec(args: GatewayWorkloadArgs, selector: Record<string, string>) {
  return {
    automountServiceAccountToken: false,
    ...(args.serviceAccountName ? { serviceAccountName: args.serviceAccountName } : {}),
    enableServiceLinks: false,
    imagePullSecrets: (args.imagePullSecrets ?? []).map((n) => ({ name: n })),
    securityContext: podSecurityContext(GATEWAY_UID),
    terminationGracePeriodSeconds: terminationGraceSeconds(args.preStopDelaySeconds, args.shutdownGraceMs),
    topologySpreadConstraints: ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'].map((topologyKey) => ({
      maxSkew: 1,
      topologyKey,
      whenUnsatisfiable: 'ScheduleAnyway',
      labelSelector: { matchLabels: selector },
    })),
    containers: [gatewayContainer(args)],
    volumes: [
      { name: 'config', configMap: { name: args.configMapName } },
      { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
      ...(args.redisCaConfigMap ? [{ name: 'redis-ca', configMap: { name: args.redisCaConfigMap } }] : []),
    ],
  };
}

export class GatewayWorkload extends pulumi.ComponentResource {
  readonly deployment: k8s.apps.v1.Deployment;
  readonly service: k8s.core.v1.Service;
  readonly serviceName: pulumi.Output<string>;
  readonly servicePort = SERVICE_PORT;
  /** In-cluster URL of this track's Service. */
  readonly url: pulumi.Output<string>;
  readonly podLabels: Record<string, string>;

  constructor(name: string, args: GatewayWorkloadArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ai-gateway:infra:GatewayWorkload', name, {}, opts);
    const objectName = args.track === 'stable' ? APP : `${APP}-${args.track}`;
    const labels = objectLabels(args.stack, 'gateway', args.track);
    const selector = selectorLabels('gateway', args.track);
    this.podLabels = labels;
    const meta = { name: objectName, namespace: args.namespace, labels };

    this.deployment = new k8s.apps.v1.Deployment(
      name,
      {
        metadata: meta,
        spec: {
          // With an HPA the replica count is the HPA's to manage: leaving it unset keeps `pulumi up` from resetting it.
          replicas: args.autoscaling ? undefined : args.replicas,
          revisionHistoryLimit: 5,
          minReadySeconds: 5,
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 } },
          selector: { matchLabels: selector },
          template: {
            metadata: { labels, annotations: { 'checksum/config': args.configChecksum, 'checksum/secret': args.secretChecksum } },
            spec: gatewayPodSpec(args, selector),
          },
        },
      },
      { parent: this },
    );
    this.service = this.serviceFor(name, meta, selector, args);
    this.serviceName = this.service.metadata.name;
    this.url = pulumi.all([this.serviceName, pulumi.output(args.namespace)]).apply(([svc, ns]) => `http://${serviceHost(svc, ns)}`);
    if (args.disruptionBudget) {
      new k8s.policy.v1.PodDisruptionBudget(name, { metadata: meta, spec: { maxUnavailable: 1, selector: { matchLabels: selector } } }, { parent: this });
    }
    if (args.autoscaling) this.autoscaler(name, meta, args, args.autoscaling);
    this.registerOutputs({ serviceName: this.serviceName, url: this.url });
  }

  private serviceFor(
    name: string,
    meta: { name: string; namespace: pulumi.Input<string>; labels: Record<string, string> },
    selector: Record<string, string>,
    args: GatewayWorkloadArgs,
  ): k8s.core.v1.Service {
    return new k8s.core.v1.Service(
      name,
      {
        metadata: meta,
        spec: {
          type: 'ClusterIP',
          selector,
          ports: [
            { name: 'http', port: SERVICE_PORT, targetPort: 'http', protocol: 'TCP' },
            { name: 'metrics', port: args.ports.metrics, targetPort: 'metrics', protocol: 'TCP' },
          ],
        },
      },
      { parent: this },
    );
  }

  /** Scale up fast, scale down slowly: long streams make pods look idle before they are. */
  private autoscaler(
    name: string,
    meta: { name: string; namespace: pulumi.Input<string>; labels: Record<string, string> },
    args: GatewayWorkloadArgs,
    autoscaling: NonNullable<GatewayWorkloadArgs['autoscaling']>,
  ): void {
    const target = (resource: 'cpu' | 'memory', averageUtilization: number) => ({ type: 'Resource', resource: { name: resource, target: { type: 'Utilization', averageUtilization } } });
    new k8s.autoscaling.v2.HorizontalPodAutoscaler(
      name,
      {
        metadata: meta,
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: this.deployment.metadata.name },
          minReplicas: args.replicas,
          maxReplicas: autoscaling.maxReplicas,
          metrics: [target('cpu', autoscaling.targetCPUUtilizationPercent), target('memory', autoscaling.targetMemoryUtilizationPercent)],
          behavior: { scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] } },
        },
      },
      { parent: this },
    );
  }
}
