/**
 * Redis for shared rate limits, budgets and spend, and a second Redis for the response cache, both in
 * the cluster; or nothing here for a managed Redis (the gateway gets its URL from the Secret; the
 * NetworkPolicy lets it out).
 *
 * Why two instances: `maxmemory-policy` is a setting of the Redis server, not of a logical database,
 * and every rate-limit, budget and spend key carries a TTL (rate-limiter-flexible's windows,
 * `EXPIRE` in the spend script), so neither `allkeys-*` nor `volatile-*` can tell a cache entry from
 * a budget. The state instance runs `noeviction` under a `maxmemory` below its container limit (full
 * memory refuses writes, which the gateway already survives, instead of an OOM kill); the cache
 * instance runs `allkeys-lru` under its own `maxmemory`, so a busy cache evicts only cache entries.
 *
 * Both take their password from a content-named Secret (`redis-auth-<hash>`): a new password is a new
 * Secret name in the pod template, so the Redis pods restart with it in the same `pulumi up` that
 * rolls the gateways onto it.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { APP, Component, REDIS_PORT, REDIS_SECRET, REDIS_UID, containerSecurityContext, objectLabels, podSecurityContext, selectorLabels } from './common';
import type { RedisConfig } from './config';
import { contentName, digest } from './contentName';

export const REDIS_SERVICE = 'redis';
export const REDIS_CACHE_SERVICE = 'redis-cache';

/** Share of the container memory limit Redis may fill: room for the AOF-rewrite fork, buffers and fragmentation. */
export const MAXMEMORY_RATIO = { state: 0.7, cache: 0.75 } as const;

const UNITS: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };

/** Bytes of a Kubernetes memory quantity ("256Mi", "1Gi", "512M"). */
export function quantityBytes(q: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`not a memory quantity: ${q}`);
  return Math.floor(Number(m[1]) * UNITS[m[2] ?? '']);
}

export const maxmemoryBytes = (memoryLimit: string, ratio: number) => Math.floor(quantityBytes(memoryLimit) * ratio);

type Role = 'state' | 'cache';

interface InstanceArgs {
  role: Role;
  namespace: pulumi.Input<string>;
  stack: string;
  image: string;
  resources: { requests: { cpu: string; memory: string }; limits: { cpu: string; memory: string } };
  persistence?: { size: string; storageClass?: string };
  authSecretName: pulumi.Input<string>;
  protect: boolean;
  priorityClassName?: pulumi.Input<string>;
}

/** Redis server arguments for a role (pure, tested). */
export function redisArgs(role: Role, memoryLimit: string, persistent: boolean): string[] {
  return [
    // $(VAR) is expanded by the kubelet from the env; the password never sits in the spec.
    '--requirepass',
    '$(REDIS_PASSWORD)',
    '--maxmemory',
    String(maxmemoryBytes(memoryLimit, MAXMEMORY_RATIO[role])),
    '--maxmemory-policy',
    role === 'state' ? 'noeviction' : 'allkeys-lru',
    '--appendonly',
    persistent ? 'yes' : 'no',
    '--save',
    persistent ? '900 1 300 100' : '',
    '--dir',
    '/data',
  ];
}

/** Priority of the state Redis: above ordinary workloads (preempts them when it must be rescheduled), far below system-*-critical (2e9). */
export const STATE_PRIORITY = 1_000_000;
export const statePriorityClassName = (namespace: string) => `${APP}-state-${namespace}`.slice(0, 63);

export interface RedisArgs {
  namespace: pulumi.Input<string>;
  /** The namespace name as text (names the stack's PriorityClass, which is cluster-scoped). */
  namespaceName: string;
  stack: string;
  config: RedisConfig;
  /** The Redis password (a secret Output), for the content-named redis-auth Secret. */
  password: pulumi.Input<string>;
  /** Digest of the password, naming that Secret. */
  passwordChecksum: string;
  /** Production: the data StatefulSet is protected and its volume retained. */
  protect: boolean;
  /** Labels of the gateway pods (the only clients). */
  gatewayPodSelector: Record<string, string>;
}

/** One Redis container: its role's arguments, the password from the Secret, ping probes, the data volume. */
function redisContainer(a: InstanceArgs) {
  const password = { name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: a.authSecretName, key: 'REDIS_PASSWORD' } } };
  const ping = { exec: { command: ['sh', '-c', 'redis-cli ping | grep -q PONG'] }, periodSeconds: 10, timeoutSeconds: 3 };
  return {
    name: 'redis',
    image: a.image,
    args: redisArgs(a.role, a.resources.limits.memory, !!a.persistence),
    // redis-cli reads REDISCLI_AUTH, so the probes authenticate without a password on the command line.
    env: [password, { ...password, name: 'REDISCLI_AUTH' }],
    ports: [{ name: 'redis', containerPort: REDIS_PORT, protocol: 'TCP' }],
    resources: a.resources,
    securityContext: containerSecurityContext(REDIS_UID),
    livenessProbe: { ...ping, initialDelaySeconds: 10, failureThreshold: 3 },
    readinessProbe: { ...ping, initialDelaySeconds: 2, failureThreshold: 2 },
    volumeMounts: [{ name: 'data', mountPath: '/data' }],
  };
}

export class Redis extends pulumi.ComponentResource {
  /** Labels of the Redis pods, or undefined for a managed Redis. */
  readonly podLabels?: Record<string, string>;
  readonly statefulSet?: k8s.apps.v1.StatefulSet;
  readonly cacheStatefulSet?: k8s.apps.v1.StatefulSet;

  constructor(name: string, args: RedisArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ai-gateway:infra:Redis', name, {}, opts);
    const cfg = args.config;
    if (cfg.mode === 'in-cluster') {
      const auth = new k8s.core.v1.Secret(
        `${name}-auth`,
        {
          metadata: { name: contentName(REDIS_SECRET, args.passwordChecksum), namespace: args.namespace, labels: objectLabels(args.stack, 'redis') },
          type: 'Opaque',
          immutable: true,
          stringData: { REDIS_PASSWORD: pulumi.secret(args.password) },
        },
        { parent: this },
      );
      const common = { namespace: args.namespace, stack: args.stack, image: cfg.image, authSecretName: auth.metadata.name, protect: args.protect };
      const persistence = cfg.persistence.enabled ? { size: String(cfg.persistence.size), storageClass: cfg.persistence.storageClass } : undefined;
      const priorityClassName = cfg.priorityClassName ?? this.priorityClass(name, args).metadata.name;
      this.statefulSet = this.instance(name, { ...common, role: 'state', resources: cfg.resources, persistence, priorityClassName });
      this.podLabels = objectLabels(args.stack, 'redis');
      new k8s.policy.v1.PodDisruptionBudget(
        name,
        {
          metadata: { name: REDIS_SERVICE, namespace: args.namespace, labels: this.podLabels },
          // One replica: `minAvailable: 1` would block every node drain (AKS and EKS upgrades wait on it).
          // maxUnavailable 1 lets a drain evict it after the preStop-free shutdown Redis does on SIGTERM
          // (an AOF fsync with persistence on); docs/deploy.md, "Draining the node that runs Redis".
          spec: { maxUnavailable: 1, unhealthyPodEvictionPolicy: 'AlwaysAllow', selector: { matchLabels: selectorLabels('redis') } },
        },
        { parent: this },
      );
      if (cfg.cache.enabled) {
        this.cacheStatefulSet = this.instance(`${name}-cache`, { ...common, protect: false, role: 'cache', resources: cfg.cache.resources });
        this.cachePolicies(name, args);
      }
    }
    this.registerOutputs({});
  }

  /** The stack's PriorityClass for the state Redis (cluster-scoped, so named after the namespace). */
  private priorityClass(name: string, args: RedisArgs): k8s.scheduling.v1.PriorityClass {
    return new k8s.scheduling.v1.PriorityClass(
      `${name}-priority`,
      {
        metadata: { name: statePriorityClassName(args.namespaceName), labels: objectLabels(args.stack, 'redis') },
        value: STATE_PRIORITY,
        globalDefault: false,
        preemptionPolicy: 'PreemptLowerPriority',
        description: `The ai-gateway state Redis of namespace ${args.namespaceName} (spend, budgets, limits): scheduled before ordinary pods.`,
      },
      { parent: this },
    );
  }

  private instance(name: string, a: InstanceArgs): k8s.apps.v1.StatefulSet {
    const component: Component = a.role === 'state' ? 'redis' : 'redis-cache';
    const objectName = a.role === 'state' ? REDIS_SERVICE : REDIS_CACHE_SERVICE;
    const labels = objectLabels(a.stack, component);
    const selector = selectorLabels(component);
    const meta = { name: objectName, namespace: a.namespace, labels };
    const service = new k8s.core.v1.Service(
      name,
      { metadata: meta, spec: { type: 'ClusterIP', selector, ports: [{ name: 'redis', port: REDIS_PORT, targetPort: 'redis', protocol: 'TCP' }] } },
      { parent: this },
    );
    return new k8s.apps.v1.StatefulSet(
      name,
      {
        metadata: meta,
        spec: {
          serviceName: service.metadata.name,
          replicas: 1,
          selector: { matchLabels: selector },
          // Deleting or scaling the StatefulSet keeps the volume (and the spend ledger on it).
          persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
          template: {
            metadata: { labels },
            spec: {
              automountServiceAccountToken: false,
              enableServiceLinks: false,
              securityContext: podSecurityContext(REDIS_UID),
              ...(a.priorityClassName ? { priorityClassName: a.priorityClassName } : {}),
              terminationGracePeriodSeconds: 30,
              containers: [redisContainer(a)],
              volumes: a.persistence ? [] : [{ name: 'data', emptyDir: { sizeLimit: '1Gi' } }],
            },
          },
          volumeClaimTemplates: a.persistence
            ? [
                {
                  metadata: { name: 'data', labels },
                  spec: { accessModes: ['ReadWriteOnce'], storageClassName: a.persistence.storageClass, resources: { requests: { storage: a.persistence.size } } },
                },
              ]
            : [],
        },
      },
      { parent: this, dependsOn: [service], protect: a.protect, retainOnDelete: a.protect },
    );
  }

  /** The cache's own NetworkPolicies (additive to infra/networkPolicies.ts): gateway -> cache on the Redis port only. */
  private cachePolicies(name: string, args: RedisArgs) {
    const policy = (suffix: string, spec: k8s.types.input.networking.v1.NetworkPolicySpec) =>
      new k8s.networking.v1.NetworkPolicy(
        `${name}-${suffix}`,
        { metadata: { name: `${APP}-${suffix}`, namespace: args.namespace, labels: objectLabels(args.stack, 'redis-cache') }, spec },
        { parent: this },
      );
    const port = [{ protocol: 'TCP', port: REDIS_PORT }];
    policy('redis-cache', {
      podSelector: { matchLabels: selectorLabels('redis-cache') },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ podSelector: { matchLabels: args.gatewayPodSelector } }], ports: port }],
      egress: [],
    });
    policy('gateway-to-redis-cache', {
      podSelector: { matchLabels: args.gatewayPodSelector },
      policyTypes: ['Egress'],
      egress: [{ to: [{ podSelector: { matchLabels: selectorLabels('redis-cache') } }], ports: port }],
    });
  }
}

/** The gateway's egress rule to a managed cache Redis of its own (redis.cache with mode external), or none. */
export function managedCacheEgress(r: RedisConfig): k8s.types.input.networking.v1.NetworkPolicyEgressRule[] {
  if (r.mode !== 'external' || !r.cache) return [];
  return [{ to: r.cache.egressCidrs.map((cidr) => ({ ipBlock: { cidr } })), ports: [{ protocol: 'TCP', port: r.cache.port }] }];
}

/** Digest naming the redis-auth Secret (domain-separated; the name reveals nothing usable about the password). */
export const passwordChecksum = (password: string) => digest('redis-auth', password);
