/**
 * The stack config: its schema, how it is read from Pulumi config, and which secrets it needs.
 *
 * Everything here is plain data and pure functions, so `scripts/render.ts` and the tests use the
 * same knowledge as the program (which secrets a stack needs, what a valid placeholder looks like).
 * Secrets are read here only to check their format and presence; `infra/index.ts` wraps them in
 * `pulumi.secret()` before any resource sees them.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { hashKey } from '../service/core/key-hash';
import { collectorPeer } from './egress';
import { egressSchema } from './egressSchema';
import { cidr, k8sName, labels, port } from './primitives';
import { dataPlaneNamespace, dataPlaneSchema } from './dataPlane';

/** The Pulumi project name (Pulumi.yaml `name`); stack config keys are `ai-gateway:<key>`. */
export const PROJECT = 'ai-gateway';

const hostname = z.string().regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'must be a lower-case DNS host name like gateway.example.com');

const image = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._\-/:]*(@sha256:[0-9a-f]{64})?$/, 'must be an image reference like registry/name:tag or registry/name@sha256:...')
  .refine((s) => /[:@]/.test(s.replace(/^[^/]*\//, '')) && !s.endsWith(':latest'), 'must pin a tag or digest (not :latest)');

const DIGEST = /@sha256:[0-9a-f]{64}$/;

const quantity = z.union([z.string().regex(/^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/, 'must be a Kubernetes quantity like 250m, 1, 512Mi'), z.number().positive().transform(String)]);
const resourcePair = z.object({ cpu: quantity, memory: quantity }).strict();
const resources = z.object({ requests: resourcePair, limits: resourcePair }).strict();

const percent = z.number().int().min(1).max(100);

/** The Redis image the in-cluster default pins (tests check it stays at or above the patched release). */
export const PATCHED_REDIS_IMAGE = 'redis:7.4.6-alpine';

const keyPrefix = z.string().regex(/^[A-Za-z0-9:_.-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 : _ . -');

export const redisSchema = z.discriminatedUnion('mode', [
  z
    .object({
      mode: z.literal('in-cluster'),
      /** 7.4.6 is the first 7.4 release with CVE-2025-49844, -46817, -46818 and -46819 fixed; see docs/deploy.md. */
      image: image.default(PATCHED_REDIS_IMAGE),
      persistence: z
        .object({ enabled: z.boolean(), size: quantity.default('1Gi'), storageClass: z.string().optional() })
        .strict()
        .prefault({ enabled: false }),
      /**
       * Requests equal to limits: the state Redis (spend, budgets, limits) runs in the Guaranteed QoS
       * class, the kubelet's last choice when a node runs short of memory.
       */
      resources: resources
        .default({ requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '250m', memory: '256Mi' } })
        .refine((r) => String(r.requests.cpu) === String(r.limits.cpu) && String(r.requests.memory) === String(r.limits.memory), {
          message: 'requests must equal limits (cpu and memory): the state Redis holds spend and budgets and must run Guaranteed, not Burstable, so node-pressure eviction picks it last',
        }),
      /** An existing PriorityClass for the state Redis; default: the stack creates ai-gateway-state-<namespace>. */
      priorityClassName: k8sName.optional(),
      /** The response cache's own Redis (allkeys-lru), so the cache can never evict budgets, limits or spend. */
      cache: z
        .object({ enabled: z.boolean().default(true), resources: resources.default({ requests: { cpu: '50m', memory: '128Mi' }, limits: { cpu: '500m', memory: '256Mi' } }) })
        .strict()
        .prefault({}),
      keyPrefix: keyPrefix.optional(),
    })
    .strict(),
  z
    .object({
      /** Managed Redis: the URL (with its password) is the secret `redisUrl`. */
      mode: z.literal('external'),
      port: z.number().int().min(1).max(65535).default(6379),
      /** Where the managed Redis lives, for the gateway's egress NetworkPolicy. */
      egressCidrs: z.array(cidr).min(1),
      /** Sentinel (HA) instead of one address: the gateway asks these for the master named sentinelName. */
      sentinels: z
        .array(z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535).default(26379) }).strict())
        .min(1)
        .optional(),
      sentinelName: z.string().min(1).optional(),
      /** Redis Cluster: redisUrl names one node or the managed cluster's configuration endpoint; egressCidrs must cover every node. */
      cluster: z.boolean().optional(),
      /** rediss:// with a private CA: the CA certificate (PEM, public) is mounted into the gateway pods. */
      tls: z
        .object({
          caCert: z
            .string()
            .regex(/^-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----\s*$/, 'must be a PEM certificate')
            .optional(),
          servername: z.string().min(1).optional(),
          rejectUnauthorized: z.boolean().optional(),
        })
        .strict()
        .optional(),
      /** Default `aigw:<stack>:`, so two stacks on one managed Redis never share budgets or spend. */
      keyPrefix: keyPrefix.optional(),
      /**
       * A managed Redis of its own for the response cache (allkeys-lru): its URL is the secret
       * `redisCacheUrl`. Without it the cache shares the state server, which must run noeviction.
       */
      cache: z
        .object({ egressCidrs: z.array(cidr).min(1), port: port.default(6379) })
        .strict()
        .optional(),
    })
    .strict()
    .refine((r) => !r.sentinels === !r.sentinelName, { message: 'sentinels and sentinelName go together', path: ['sentinelName'] })
    .refine((r) => !(r.cluster && r.sentinels), { message: 'cluster and sentinels do not go together (a cluster fails over by itself)', path: ['cluster'] }),
]);

/** The gateway block: the gateway's own config (service/config/schema.ts) minus everything secret. */
const gatewayBlock = z
  .object({
    providers: z.array(z.object({ name: k8sName, api_key: z.never({ error: 'set provider keys as the secret providerApiKeys.<provider name>' }).optional() }).loose()).min(1),
    auth: z
      .object({
        mode: z.enum(['keys', 'none']).default('keys'),
        keys: z.array(z.object({ name: k8sName, hash: z.never({ error: 'set key hashes as the secret clientKeyHashes.<key name>' }).optional() }).loose()).default([]),
        admin_key_hashes: z.never({ error: 'list admin key names in adminKeys and set their hashes as the secret adminKeyHashes.<name>' }).optional(),
      })
      .loose()
      .prefault({}),
    redis: z.never({ error: 'Redis is set by the stack key "redis" (and the secret redisPassword or redisUrl)' }).optional(),
    telemetry: z.never({ error: 'set the collector with the stack key telemetry.otlpEndpoint (it also opens the egress to it)' }).optional(),
  })
  .loose();

/**
 * How the public reaches the gateway: a Gateway API HTTPRoute (default), an ingress-nginx Ingress, or
 * `transition` (from ingress-nginx to Gateway API): both routes and both admission sources for one
 * release, so DNS can move while either path serves; a later `up` with `gateway-api` removes the Ingress.
 */
export const routeSchema = z
  .object({
    kind: z.enum(['gateway-api', 'ingress-nginx', 'transition']).default('gateway-api'),
    /** Where Gateway traffic comes from (infra/dataPlane.ts); required with gateway-api and transition. */
    dataPlane: dataPlaneSchema.optional(),
    host: hostname,
    /** Longest a request (a whole SSE stream) may last through the route: HTTPRoute timeouts, nginx read/send timeouts. */
    streamTimeoutSeconds: z.number().int().min(30).max(86_400).default(3600),
    /** The certificate of a listener or Ingress this stack creates (not used with a shared Gateway). */
    tls: z
      .object({
        /** An existing cert-manager ClusterIssuer; `challenge` says how it proves the host. */
        clusterIssuer: k8sName.optional(),
        challenge: z.enum(['http-01', 'dns-01', 'none']).default('http-01'),
        /** Or: the stack creates its own ACME Issuer with the HTTP-01 solver that fits the route kind. */
        acme: z
          .object({ email: z.email(), server: z.url({ protocol: /^https$/ }).default('https://acme-v02.api.letsencrypt.org/directory') })
          .strict()
          .optional(),
        secretName: k8sName.optional(),
      })
      .strict()
      .prefault({}),
    gateway: z
      .object({
        /**
         * A Gateway owned by someone else (usually the platform team), and its HTTPS listener. The listener is
         * required: without sectionName the route would attach to plain-HTTP listeners too, keys in clear text.
         */
        parentRef: z
          .object({ name: k8sName, namespace: k8sName, sectionName: k8sName.optional() })
          .strict()
          .refine((p) => !!p.sectionName, { path: ['sectionName'], message: "is required: the name of the Gateway's HTTPS listener (without it the route attaches to plain-HTTP listeners too)" })
          .optional(),
        /** Or: a Gateway this stack creates in its namespace, HTTPS listener with a cert-manager certificate. */
        create: z.object({ className: k8sName }).strict().optional(),
        dataPlaneNamespace: z
          .never({
            error: 'replaced by route.dataPlane: {kind: namespace, namespace: NAME[, podLabels]}, {kind: cidrs, cidrs: [...]}, or a preset {kind: envoy-gateway | cilium | gke} (docs/deploy.md)',
          })
          .optional(),
      })
      .strict()
      .prefault({}),
    ingress: z
      .object({
        className: z.string().default('nginx'),
        /** Namespace of the ingress controller: the only one allowed to reach the gateway's HTTP port. */
        controllerNamespace: k8sName.default('ingress-nginx'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type RouteConfig = z.output<typeof routeSchema>;

function refineRoute(r: RouteConfig, namespace: string, ctx: z.RefinementCtx) {
  const issue = (path: PropertyKey[], message: string) => ctx.addIssue({ code: 'custom', path: ['route', ...path], message });
  const createsCertificate = servesIngress(r) || !!r.gateway.create;
  if (r.tls.clusterIssuer && r.tls.acme) issue(['tls'], 'set either clusterIssuer or acme, not both');
  if (createsCertificate && !r.tls.clusterIssuer && !r.tls.acme)
    issue(['tls'], `${servesIngress(r) ? 'the Ingress' : 'a Gateway this stack creates'} needs a certificate issuer: set route.tls.clusterIssuer or route.tls.acme`);
  // With ingress-nginx alone route.dataPlane is unused (the controller is route.ingress.controllerNamespace).
  if (!servesGatewayApi(r)) return;
  if (!!r.gateway.parentRef === !!r.gateway.create) issue(['gateway'], 'set exactly one of parentRef (a shared Gateway) or create (a Gateway of this stack)');
  if (!r.dataPlane)
    issue(
      ['dataPlane'],
      'is required with Gateway API: where the Gateway\'s traffic comes from, one of {kind: namespace, namespace: NAME[, podLabels: {...}]}, {kind: cidrs, cidrs: [...]}, {kind: envoy-gateway}, {kind: cilium}, {kind: gke[, proxyOnlySubnetCidrs: [...]]} (docs/deploy.md, "The data plane")',
    );
  if (dataPlaneNamespace(r.dataPlane) === namespace) issue(['dataPlane', 'namespace'], "must not be the stack's namespace: its default-deny policy would block the proxy pods");
}

/** The route kinds that render an HTTPRoute, and those that render the nginx Ingress (both during a transition). */
export const servesGatewayApi = (r: Pick<RouteConfig, 'kind'>) => r.kind === 'gateway-api' || r.kind === 'transition';
export const servesIngress = (r: Pick<RouteConfig, 'kind'>) => r.kind === 'ingress-nginx' || r.kind === 'transition';

export { egressSchema };
export type { EgressConfig } from './egressSchema';

const isPlainObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** The canary's gateway block: objects merge key by key, anything else (arrays too) replaces. */
export function mergeGatewayOverrides<T extends Record<string, unknown>>(base: T, overrides: Record<string, unknown>): T {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(overrides)) out[k] = isPlainObject(v) && isPlainObject(out[k]) ? mergeGatewayOverrides(out[k] as Record<string, unknown>, v) : v;
  return out as T;
}

/**
 * AWS credentials for `type: bedrock` providers, read by the gateway through the standard AWS chain
 * (service/providers/bedrock-credentials.ts): IRSA (a ServiceAccount with the role annotation; EKS's
 * webhook injects the web identity token), EKS Pod Identity (the ServiceAccount; the association is
 * made with `aws eks create-pod-identity-association`), or static keys from the secrets
 * awsAccessKeyId / awsSecretAccessKey as the fallback.
 */
export const awsSchema = z.discriminatedUnion('mode', [
  z
    .object({ mode: z.literal('irsa'), roleArn: z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/, 'must be an IAM role ARN like arn:aws:iam::123456789012:role/ai-gateway') })
    .strict(),
  z.object({ mode: z.literal('pod-identity') }).strict(),
  z.object({ mode: z.literal('static') }).strict(),
]);

/**
 * PostgreSQL for the gateway's key store and spend ledger (DATABASE_URL): a managed server whose URL is
 * the secret `databaseUrl`, or an in-cluster cluster run by the CloudNativePG operator (its `Cluster`
 * resource; the operator writes the Secret `<cluster>-app` whose `uri` key the pods read).
 */
export const databaseSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('external'), egressCidrs: z.array(cidr).min(1), port: port.default(5432) }).strict(),
  z
    .object({
      mode: z.literal('cnpg'),
      instances: z.number().int().min(1).max(9).default(1),
      storage: z
        .object({ size: quantity.default('10Gi'), storageClass: z.string().optional() })
        .strict()
        .prefault({}),
      resources: resources.default({ requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '250m', memory: '512Mi' } }),
      /** Namespace of the CloudNativePG operator (its status checks reach the instances on 8000). */
      operatorNamespace: k8sName.default('cnpg-system'),
      /** The Kubernetes API server's addresses: the instance manager in each pod talks to it (port 443 or 6443). */
      apiServer: z.object({ cidrs: z.array(cidr).min(1), port: port.default(443) }).strict(),
      /** Continuous backup (WAL archive and base backups) to object storage, barman-cloud style: the bucket path and where it is reached. */
      backup: z
        .object({
          destinationPath: z.string().regex(/^(s3|gs|https):\/\/\S+$/, 'must be an s3://, gs:// or https:// (Azure Blob) URL'),
          /** A Secret in the namespace with the object store's credentials (ACCESS_KEY_ID / ACCESS_SECRET_KEY for S3). */
          s3CredentialsSecret: k8sName.optional(),
          retentionPolicy: z
            .string()
            .regex(/^\d+[dwm]$/, 'must be like 30d, 4w or 3m')
            .default('30d'),
          /** Cron schedule (six fields, seconds first, as CloudNativePG's ScheduledBackup takes it). */
          schedule: z
            .string()
            .regex(/^(\S+\s+){5}\S+$/, 'must be a six-field cron schedule (seconds first)')
            .default('0 0 3 * * *'),
        })
        .strict()
        .optional(),
    })
    .strict(),
]);

/** Namespaces a stack may not own: the cluster's own, and `default`, which every tenant shares. */
export const RESERVED_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease', 'default'];
const RESERVED_NAMESPACES_TEXT = RESERVED_NAMESPACES.join(', ');

/**
 * Canary pods needed to carry `weight` percent of the traffic the stable minimum carries at 100:
 * no canary pod busier than a stable pod would be, and at least two once the canary carries half or
 * more (one pod is one node drain or crash away from sending that share nowhere).
 */
export const canaryReplicasNeeded = (stableReplicas: number, weight: number) => (weight === 0 ? 0 : Math.max(Math.ceil((stableReplicas * weight) / 100), weight >= 50 ? 2 : 1));

const stackConfigBase = z
  .object({
    /** Guards apply per environment: production refuses auth mode "none". */
    environment: z.enum(['staging', 'production']),
    /** The stack's own namespace (created by the stack, or adopted: docs/deploy.md, "An existing namespace"). */
    namespace: k8sName.refine((n) => !RESERVED_NAMESPACES.includes(n), {
      message: `must be a namespace of the stack's own, not one of ${RESERVED_NAMESPACES_TEXT}: the stack labels it for Pod Security "restricted", puts a default-deny NetworkPolicy in it and may protect or delete it`,
    }),
    /** The cluster this stack deploys to: a kubeconfig context, checked before anything is created (infra/provider.ts). */
    cluster: z
      .object({
        context: z.string().min(1),
        /** Path of the kubeconfig file; default $KUBECONFIG or ~/.kube/config. */
        kubeconfig: z.string().min(1).optional(),
      })
      .strict(),
    /** The gateway image, pinned (tag or digest; production: digest). Leave it out when the stack builds the image (`imageBuild`). */
    image: image.optional(),
    /** Build this repository's Dockerfile and push it from the stack (infra/image.ts); the pods then run the pushed digest. */
    imageBuild: z
      .object({
        /** registry/name without a tag, e.g. ghcr.io/example/ai-gateway. */
        repository: z.string().regex(/^[a-z0-9][a-z0-9._\-/:]*[a-z0-9]$/, 'must be registry/name without a tag'),
        tag: z
          .string()
          .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, 'must be a Docker tag like 0.2.0')
          .refine((t) => t !== 'latest', 'must not be latest'),
        /** Registry the credentials are for (default: the repository's host). */
        registry: z.string().min(1).optional(),
        /** Registry user; its password is the secret registryPassword. */
        username: z.string().min(1).optional(),
        platforms: z
          .array(z.enum(['linux/amd64', 'linux/arm64']))
          .min(1)
          .default(['linux/amd64']),
        context: z.string().min(1).default('.'),
        dockerfile: z.string().min(1).default('Dockerfile'),
      })
      .strict()
      .optional(),
    /** Names of existing kubernetes.io/dockerconfigjson Secrets in the namespace, for a private registry. */
    imagePullSecrets: z.array(k8sName).default([]),
    /** Protect the namespace and the Redis data from `pulumi destroy` and replacement (default: on in production). */
    protect: z.boolean().optional(),
    /** Replicas of the stable Deployment; with autoscaling on, the HPA's minimum. */
    replicas: z.number().int().min(1).max(100),
    autoscaling: z
      .object({
        enabled: z.boolean().default(true),
        maxReplicas: z.number().int().min(1).max(200),
        targetCPUUtilizationPercent: percent.default(70),
        targetMemoryUtilizationPercent: percent.default(80),
      })
      .strict()
      .optional(),
    resources: resources.default({ requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } }),
    /** Seconds the pod keeps serving after SIGTERM is scheduled, so endpoints drop it first. */
    preStopDelaySeconds: z.number().int().min(0).max(120).default(10),
    route: routeSchema,
    egress: egressSchema,
    /** Before route.kind existed. Named here so an old stack file gets directions, not just "unknown key". */
    ingress: z
      .never({
        error:
          'replaced by "route": move host to route.host, clusterIssuer to route.tls.clusterIssuer, tlsSecretName to route.tls.secretName, className and controllerNamespace under route.ingress, readTimeoutSeconds to route.streamTimeoutSeconds, and set route.kind: ingress-nginx to keep the nginx Ingress (docs/deploy.md)',
      })
      .optional(),
    redis: redisSchema,
    monitoring: z
      .object({
        enabled: z.boolean().default(true),
        prometheusNamespace: k8sName.default('monitoring'),
        /** Labels the Prometheus operator selects ServiceMonitors and PrometheusRules by. */
        ruleLabels: labels.default({ release: 'kube-prometheus-stack' }),
        dashboardNamespace: k8sName.optional(),
        dailySpendAlertUsd: z.number().positive().default(500),
        errorRateAlertRatio: z.number().gt(0).lt(1).default(0.05),
        p99LatencyAlertSeconds: z.number().positive().default(30),
      })
      .strict()
      .prefault({}),
    canary: z
      .object({
        image,
        /** Percent of requests the route sends to the canary; 0 removes the canary. */
        weight: z.number().int().min(0).max(100),
        replicas: z.number().int().min(1).max(20).default(1),
        /** Overrides of the gateway block for the canary pods only (deep-merged; arrays replace). */
        gateway: z.record(z.string(), z.unknown()).optional(),
      })
      .strict()
      .optional(),
    /** A CronJob that runs `npm run smoke` against the Service on a schedule, with its own low-limit key (infra/smokeProbe.ts). */
    smokeProbe: z
      .object({
        enabled: z.boolean().default(true),
        schedule: z
          .string()
          .regex(/^(\S+\s+){4}\S+$/, 'must be a five-field cron schedule')
          .default('*/15 * * * *'),
        /**
         * The probe's verdict on the gateway's path: the streamed completion's first byte (the gateway
         * answers with its headers and relays the provider's first event; no whole answer is waited for).
         */
        maxFirstByteMs: z.number().int().positive().default(3000),
        /** A bound on a whole non-streamed answer, which is mostly the model's time: generous by default. */
        maxLatencyMs: z.number().int().positive().default(30_000),
        /** Model the probe asks (default: the first that GET /v1/models lists). */
        model: z.string().min(1).optional(),
        requestsPerMinute: z.number().int().min(1).max(60).default(4),
        dailyBudgetUsd: z.number().positive().max(100).default(1),
      })
      .strict()
      .optional(),
    /** Traces to an OpenTelemetry collector: OTEL_* variables on the gateway pods and an egress rule to it. */
    telemetry: z
      .object({
        /**
         * OTLP/HTTP base URL, e.g. http://otel-collector.observability.svc:4318 (the gateway appends /v1/traces).
         * An in-cluster Service host (NAME.NAMESPACE.svc[.cluster.local], or a bare NAME in the gateway's namespace)
         * or an IPv4 address derives the egress rule; any other host needs egressCidrs.
         */
        otlpEndpoint: z
          .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL like http://otel-collector.observability.svc:4318' })
          .refine((u) => !new URL(u).username && !new URL(u).password, 'must not carry credentials'),
        /** Fraction of new traces sampled (parent-based: a client's sampled traceparent is always followed). */
        sampleRatio: z.number().min(0).max(1).default(1),
        /** Where a collector outside the cluster lives, for the egress rule (IPv4 CIDRs). */
        egressCidrs: z.array(cidr).min(1).optional(),
      })
      .strict()
      .optional(),
    /** Names of admin keys; each needs the secret adminKeyHashes.<name>. */
    adminKeys: z.array(k8sName).default([]),
    /** AWS credentials for bedrock providers (required when one is configured). */
    aws: awsSchema.optional(),
    /** PostgreSQL for the key store and spend ledger (the gateway reads DATABASE_URL). */
    database: databaseSchema.optional(),
    gateway: gatewayBlock,
    // Secrets (set with `pulumi config set --secret [--path]`); format-checked here, used as pulumi.secret().
    // `pulumi config set --path` stores an all-digit value as a number; a key is still a string.
    providerApiKeys: z.record(z.string(), z.union([z.string().min(1), z.number().transform(String)])).default({}),
    clientKeyHashes: z.record(z.string(), z.string()).default({}),
    adminKeyHashes: z.record(z.string(), z.string()).default({}),
    redisPassword: z.string().min(16, 'must be at least 16 characters').optional(),
    redisUrl: z
      .string()
      .regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL')
      .optional(),
    /** The managed cache Redis (redis.cache with mode external). */
    redisCacheUrl: z
      .string()
      .regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL')
      .optional(),
    /** A managed PostgreSQL (database.mode external). */
    databaseUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    /** Static AWS keys (aws.mode static), the fallback when neither IRSA nor Pod Identity is available. */
    awsAccessKeyId: z
      .string()
      .regex(/^[A-Z0-9]{16,128}$/, 'must be an AWS access key id (upper-case letters and digits)')
      .optional(),
    awsSecretAccessKey: z.string().min(16, 'must be at least 16 characters').optional(),
    /** Password or token for imageBuild.username (used only by the build, never in the cluster). */
    registryPassword: z.string().min(1).optional(),
    /** The smoke probe's client key (plaintext, for its Secret); the gateway gets only its hash. */
    smokeProbeKey: z.string().min(16, 'must be at least 16 characters').optional(),
  })
  .strict();

export const stackConfigSchema = stackConfigBase.superRefine((c, ctx) => {
  refineScaleAndImages(c, ctx);
  refineProvidersAndCanary(c, ctx);
});

type StackConfigParsed = z.output<typeof stackConfigBase>;

/** Replicas and autoscaling, production's auth and replica floor, the telemetry egress, the image (or its build), digests in production. */
function refineScaleAndImages(c: StackConfigParsed, ctx: z.RefinementCtx): void {
  if (c.autoscaling?.enabled !== false && c.autoscaling && c.autoscaling.maxReplicas < c.replicas) {
    ctx.addIssue({ code: 'custom', path: ['autoscaling', 'maxReplicas'], message: `must be at least replicas (${c.replicas})` });
  }
  if (c.environment === 'production' && c.gateway.auth.mode === 'none') {
    ctx.addIssue({ code: 'custom', path: ['gateway', 'auth', 'mode'], message: 'the production environment refuses auth mode "none"; use "keys"' });
  }
  if (c.environment === 'production' && c.replicas < 2) {
    ctx.addIssue({ code: 'custom', path: ['replicas'], message: 'production needs at least 2 replicas to survive a node drain' });
  }
  if (c.telemetry && !c.telemetry.egressCidrs && collectorPeer(c.telemetry.otlpEndpoint, c.namespace, c.egress.clusterDomain).kind === 'external') {
    ctx.addIssue({
      code: 'custom',
      path: ['telemetry', 'egressCidrs'],
      message: "is required when otlpEndpoint is not an in-cluster Service (NAME.NAMESPACE.svc) or an IP address: list the collector's CIDRs",
    });
  }
  if (!c.image === !c.imageBuild) {
    ctx.addIssue({ code: 'custom', path: ['image'], message: c.image ? 'set image or imageBuild, not both' : 'is required (or imageBuild, to build and push from the stack)' });
  }
  if (c.imageBuild?.username && !c.registryPassword) {
    ctx.addIssue({ code: 'custom', path: ['registryPassword'], message: 'missing secret for imageBuild.username; set it with `pulumi config set --secret registryPassword <token>`' });
  }
  if (c.environment === 'production') {
    for (const [path, ref] of [
      [['image'], c.image],
      [['canary', 'image'], c.canary?.image],
    ] as const) {
      if (ref && !DIGEST.test(ref)) ctx.addIssue({ code: 'custom', path: [...path], message: 'production needs an image pinned by digest (name@sha256:...); a tag can be moved' });
    }
  }
}

/** Bedrock's AWS credentials, the CloudNativePG floor, the canary's capacity, image and overrides, the route. */
function refineProvidersAndCanary(c: StackConfigParsed, ctx: z.RefinementCtx): void {
  const bedrock = gatewayBlocks(c)
    .flatMap((g) => g.providers)
    .filter((p) => p.type === 'bedrock');
  if (bedrock.length && !c.aws) {
    ctx.addIssue({
      code: 'custom',
      path: ['aws'],
      message: `is required for bedrock provider(s) ${[...new Set(bedrock.map((p) => p.name))].join(', ')}: {mode: irsa, roleArn: ...}, {mode: pod-identity} or {mode: static} (docs/deploy.md, "Amazon Bedrock")`,
    });
  }
  if (c.environment === 'production' && c.database?.mode === 'cnpg' && c.database.instances < 2) {
    ctx.addIssue({ code: 'custom', path: ['database', 'instances'], message: 'production needs at least 2 instances (a primary and a replica the operator fails over to)' });
  }
  if (c.canary && c.canary.replicas < canaryReplicasNeeded(c.replicas, c.canary.weight)) {
    const need = canaryReplicasNeeded(c.replicas, c.canary.weight);
    ctx.addIssue({
      code: 'custom',
      path: ['canary', 'replicas'],
      message: `${c.canary.replicas} canary replica(s) cannot carry weight ${c.canary.weight}: with ${c.replicas} stable replicas it needs at least ${need} (docs/deploy.md, "Scaling the canary")`,
    });
  }
  if (c.canary && c.image && c.canary.image === c.image && c.canary.weight > 0 && !c.canary.gateway) {
    ctx.addIssue({ code: 'custom', path: ['canary', 'image'], message: 'is the same as image; a canary needs a different image or canary.gateway overrides' });
  }
  refineRoute(c.route, c.namespace, ctx);
  const canaryServer = c.canary?.gateway?.server as Record<string, unknown> | undefined;
  for (const key of ['port', 'metrics_port', 'host'].filter((k) => canaryServer?.[k] !== undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: ['canary', 'gateway', 'server', key],
      message: 'the canary listens where the stable pods do (the Service, route and NetworkPolicies name the stable ports); remove it',
    });
  }
  if (c.canary?.gateway) {
    const merged = gatewayBlock.safeParse(mergeGatewayOverrides(c.gateway, c.canary.gateway));
    for (const issue of merged.success ? [] : merged.error.issues) ctx.addIssue({ code: 'custom', path: ['canary', 'gateway', ...issue.path], message: issue.message });
  }
}

export type StackConfig = z.output<typeof stackConfigSchema>;
export type RedisConfig = z.output<typeof redisSchema>;

// ---------------------------------------------------------------- secrets

export type SecretKind = 'apiKey' | 'keyHash' | 'password' | 'redisUrl' | 'databaseUrl' | 'awsKeyId';

/** One secret the stack needs: where it lives in stack config and which env var carries it into the pod. */
export interface SecretSlot {
  /** Top-level config key, e.g. providerApiKeys. */
  key: 'providerApiKeys' | 'clientKeyHashes' | 'adminKeyHashes' | 'redisPassword' | 'redisUrl' | 'redisCacheUrl' | 'databaseUrl' | 'awsAccessKeyId' | 'awsSecretAccessKey' | 'smokeProbeKey';
  /** Entry inside an object-valued key (provider or key name), absent for scalar keys. */
  entry?: string;
  env: string;
  kind: SecretKind;
}

const envSuffix = (name: string) => name.toUpperCase().replace(/[^A-Z0-9]/g, '_');

/** `pulumi config set --secret` command that sets a slot, for error messages and docs. */
export const slotPath = (s: Pick<SecretSlot, 'key' | 'entry'>) => (s.entry === undefined ? s.key : `${s.key}.${s.entry}`);

const SHA256 = /^sha256:[0-9a-f]{64}$/;

/** The gateway blocks the stack deploys: the stable one, and a running canary's when it overrides it. */
export function gatewayBlocks(c: Pick<StackConfig, 'gateway'> & Partial<Pick<StackConfig, 'canary'>>): StackConfig['gateway'][] {
  return c.canary?.gateway && c.canary.weight > 0 ? [c.gateway, mergeGatewayOverrides(c.gateway, c.canary.gateway)] : [c.gateway];
}

const uniqueBy = <T>(items: T[], key: (t: T) => string) => [...new Map(items.map((t) => [key(t), t])).values()];

/** Every secret the stack needs, derived from its plain config (providers, key names, Redis mode), the canary's included. */
export function secretSlots(c: Pick<StackConfig, 'gateway' | 'adminKeys' | 'redis' | 'smokeProbe'> & Partial<Pick<StackConfig, 'canary' | 'aws' | 'database'>>): SecretSlot[] {
  const blocks = gatewayBlocks(c);
  // Bedrock signs with AWS credentials (the `aws` key), never with a provider API key.
  const providers = uniqueBy(
    blocks.flatMap((g) => g.providers),
    (p) => p.name,
  ).filter((p) => p.type !== 'bedrock');
  const slots: SecretSlot[] = providers.map((p) => ({ key: 'providerApiKeys', entry: p.name, env: `PROVIDER_${envSuffix(p.name)}_API_KEY`, kind: 'apiKey' }));
  const keys = uniqueBy(
    blocks.flatMap((g) => (g.auth.mode === 'keys' ? g.auth.keys : [])),
    (k) => k.name,
  );
  for (const k of keys) slots.push({ key: 'clientKeyHashes', entry: k.name, env: `CLIENT_KEY_HASH_${envSuffix(k.name)}`, kind: 'keyHash' });
  for (const name of c.adminKeys) slots.push({ key: 'adminKeyHashes', entry: name, env: `ADMIN_KEY_HASH_${envSuffix(name)}`, kind: 'keyHash' });
  slots.push(c.redis.mode === 'in-cluster' ? { key: 'redisPassword', env: 'REDIS_PASSWORD', kind: 'password' } : { key: 'redisUrl', env: 'REDIS_URL', kind: 'redisUrl' });
  if (c.redis.mode === 'external' && c.redis.cache) slots.push({ key: 'redisCacheUrl', env: 'REDIS_CACHE_URL', kind: 'redisUrl' });
  if (c.database?.mode === 'external') slots.push({ key: 'databaseUrl', env: 'DATABASE_URL', kind: 'databaseUrl' });
  if (c.aws?.mode === 'static') slots.push({ key: 'awsAccessKeyId', env: 'AWS_ACCESS_KEY_ID', kind: 'awsKeyId' }, { key: 'awsSecretAccessKey', env: 'AWS_SECRET_ACCESS_KEY', kind: 'password' });
  // The gateway gets the probe key's hash; the plaintext goes only into the probe's own Secret.
  if (c.smokeProbe?.enabled) slots.push({ key: 'smokeProbeKey', env: PROBE_KEY_HASH_ENV, kind: 'keyHash' });
  return slots;
}

export const PROBE_KEY_HASH_ENV = 'CLIENT_KEY_HASH_SMOKE_PROBE';

export function slotValue(c: StackConfig, s: SecretSlot): string | undefined {
  if (s.key === 'smokeProbeKey') return c.smokeProbeKey === undefined ? undefined : hashKey(c.smokeProbeKey);
  if (s.key === 'providerApiKeys' || s.key === 'clientKeyHashes' || s.key === 'adminKeyHashes') return c[s.key][s.entry!];
  return c[s.key];
}

/**
 * A value of the right format for a slot, never a real secret: the renderer feeds these for
 * `secure:` entries, and the program validates its gateway config with them.
 */
export function placeholderSecret(s: Pick<SecretSlot, 'key' | 'entry' | 'kind'>): string {
  const digest = createHash('sha256')
    .update(`placeholder:${slotPath(s)}`)
    .digest('hex');
  switch (s.kind) {
    case 'keyHash':
      return `sha256:${digest}`;
    case 'redisUrl':
      return `rediss://:placeholder-${digest.slice(0, 16)}@redis.invalid:6380`;
    case 'databaseUrl':
      return `postgresql://placeholder:${digest.slice(0, 16)}@postgres.invalid:5432/aigw`;
    case 'awsKeyId':
      return `AKIA${digest.slice(0, 16).toUpperCase()}`;
    default:
      return `placeholder-${digest.slice(0, 32)}`;
  }
}

// ---------------------------------------------------------------- errors

export class StackConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid stack config:\n  - ${problems.join('\n  - ')}`);
    this.name = 'StackConfigError';
  }
}

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)), '');
}

const configKey = (path: ReadonlyArray<PropertyKey>) => `${PROJECT}:${formatPath(path) || '(root)'}`;

/**
 * Validates raw stack config (keys without the project prefix, values already JSON-parsed), secrets
 * aside: presence and format of secrets are `checkSecrets`' job. Throws StackConfigError whose lines
 * start with the full config key, e.g. `ai-gateway:gateway.providers[0].base_url: ...`.
 */
export function parsePlainStackConfig(raw: Record<string, unknown>): StackConfig {
  const result = stackConfigSchema.safeParse(raw, { error: (issue) => (issue.input === undefined ? 'is required' : undefined) });
  if (result.success) return result.data;
  throw new StackConfigError(
    result.error.issues.map((issue) =>
      issue.code === 'unrecognized_keys' ? `${configKey(issue.path)}: unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}` : `${configKey(issue.path)}: ${issue.message}`,
    ),
  );
}

/** Every secret the stack needs is set and well-formed; messages never contain a secret value. */
export function checkSecrets(c: StackConfig): StackConfig {
  const problems: string[] = [];
  for (const s of secretSlots(c)) {
    const v = slotValue(c, s);
    const set = `pulumi config set --secret${s.entry === undefined ? '' : ' --path'} '${slotPath(s)}' <value>`;
    if (v === undefined || v === '') problems.push(`${PROJECT}:${slotPath(s)}: missing secret; set it with \`${set}\``);
    else if (s.kind === 'redisUrl' && c.redis.mode === 'external' && c.redis.tls && !v.startsWith('rediss://'))
      problems.push(`${PROJECT}:${slotPath(s)}: redis.tls is set, so the URL must start with rediss://`);
    else if (s.kind === 'keyHash' && !SHA256.test(v)) problems.push(`${PROJECT}:${slotPath(s)}: must be "sha256:" followed by 64 lower-case hex digits (see \`npm run keygen\`)`);
  }
  if (problems.length) throw new StackConfigError(problems);
  return c;
}

export const parseStackConfig = (raw: Record<string, unknown>): StackConfig => checkSecrets(parsePlainStackConfig(raw));

/** Keys whose values are strings even when they look like JSON (a password of digits stays a string). */
export const STRING_KEYS: ReadonlySet<string> = new Set([
  'environment',
  'namespace',
  'image',
  'redisPassword',
  'redisUrl',
  'redisCacheUrl',
  'databaseUrl',
  'awsAccessKeyId',
  'awsSecretAccessKey',
  'smokeProbeKey',
  'registryPassword',
]);

/** The top-level keys `parseStackConfig` knows, so a reader can fetch each from Pulumi config. */
export const STACK_KEYS = Object.keys(stackConfigSchema.shape) as (keyof StackConfig)[];
