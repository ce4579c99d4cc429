/**
 * Redis for shared rate limits, budgets, spend and the response cache: in the cluster (one-replica
 * StatefulSet, password from the gateway Secret, disk per stack) or nothing here for a managed
 * Redis (the gateway gets its URL from the Secret; the NetworkPolicy lets it out).
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { REDIS_PORT, REDIS_UID, containerSecurityContext, objectLabels, podSecurityContext, selectorLabels } from './common';
import type { RedisConfig } from './config';

export const REDIS_SERVICE = 'redis';

export interface RedisArgs {
  namespace: pulumi.Input<string>;
  stack: string;
  config: RedisConfig;
  /** The Secret with key REDIS_PASSWORD (created by GatewayNamespace). */
  secretName: pulumi.Input<string>;
}

export class Redis extends pulumi.ComponentResource {
  /** Labels of the Redis pods, or undefined for a managed Redis. */
  readonly podLabels?: Record<string, string>;
  readonly statefulSet?: k8s.apps.v1.StatefulSet;

  constructor(name: string, args: RedisArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ai-gateway:infra:Redis', name, {}, opts);
    const cfg = args.config;
    if (cfg.mode === 'in-cluster') {
      const labels = objectLabels(args.stack, 'redis');
      const selector = selectorLabels('redis');
      this.podLabels = labels;
      const meta = { name: REDIS_SERVICE, namespace: args.namespace, labels };
      const persistent = cfg.persistence.enabled;
      const password = { name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: args.secretName, key: 'REDIS_PASSWORD' } } };
      const ping = { exec: { command: ['sh', '-c', 'redis-cli ping | grep -q PONG'] }, periodSeconds: 10, timeoutSeconds: 3 };

      const service = new k8s.core.v1.Service(
        name,
        { metadata: meta, spec: { type: 'ClusterIP', selector, ports: [{ name: 'redis', port: REDIS_PORT, targetPort: 'redis', protocol: 'TCP' }] } },
        { parent: this },
      );
      this.statefulSet = new k8s.apps.v1.StatefulSet(
        name,
        {
          metadata: meta,
          spec: {
            serviceName: service.metadata.name,
            replicas: 1,
            selector: { matchLabels: selector },
            template: {
              metadata: { labels },
              spec: {
                automountServiceAccountToken: false,
                enableServiceLinks: false,
                securityContext: podSecurityContext(REDIS_UID),
                terminationGracePeriodSeconds: 30,
                containers: [
                  {
                    name: 'redis',
                    image: cfg.image,
                    // $(VAR) is expanded by the kubelet from the env below; the password never sits in the spec.
                    args: [
                      '--requirepass', '$(REDIS_PASSWORD)',
                      '--appendonly', persistent ? 'yes' : 'no',
                      '--save', persistent ? '900 1 300 100' : '',
                      '--dir', '/data',
                    ],
                    // redis-cli reads REDISCLI_AUTH, so the probes authenticate without a password on the command line.
                    env: [password, { ...password, name: 'REDISCLI_AUTH' }],
                    ports: [{ name: 'redis', containerPort: REDIS_PORT, protocol: 'TCP' }],
                    resources: cfg.resources,
                    securityContext: containerSecurityContext(REDIS_UID),
                    livenessProbe: { ...ping, initialDelaySeconds: 10, failureThreshold: 3 },
                    readinessProbe: { ...ping, initialDelaySeconds: 2, failureThreshold: 2 },
                    volumeMounts: [{ name: 'data', mountPath: '/data' }],
                  },
                ],
                volumes: persistent ? [] : [{ name: 'data', emptyDir: { sizeLimit: '1Gi' } }],
              },
            },
            volumeClaimTemplates: persistent
              ? [
                  {
                    metadata: { name: 'data', labels },
                    spec: {
                      accessModes: ['ReadWriteOnce'],
                      storageClassName: cfg.persistence.storageClass,
                      resources: { requests: { storage: String(cfg.persistence.size) } },
                    },
                  },
                ]
              : [],
          },
        },
        { parent: this, dependsOn: [service] },
      );
    }
    this.registerOutputs({});
  }
}
