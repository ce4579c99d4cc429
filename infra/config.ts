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
import { dnsLabel } from '../service/config/schema';
import { hashKey } from '../service/tenancy/keys';
import { collectorPeer } from './telemetry';

/** The Pulumi project name (Pulumi.yaml `name`); stack config keys are `ai-gateway:<key>`. */
export const PROJECT = 'ai-gateway';

const k8sName = dnsLabel;

const hostname = z
  .string()
  .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, 'must be a lower-case DNS host name like gateway.example.com');

const image = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._\-/:]*(@sha256:[0-9a-f]{64})?$/, 'must be an image reference like registry/name:tag or registry/name@sha256:...')
  .refine((s) => /[:@]/.test(s.replace(/^[^/]*\//, '')) && !s.endsWith(':latest'), 'must pin a tag or digest (not :latest)');

const DIGEST = /@sha256:[0-9a-f]{64}$/;

const quantity = z.union([z.string().regex(/^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/, 'must be a Kubernetes quantity like 250m, 1, 512Mi'), z.number().positive().transform(String)]);
const resourcePair = z.object({ cpu: quantity, memory: quantity }).strict();
const resources = z.object({ requests: resourcePair, limits: resourcePair }).strict();

const cidr = z.cidrv4({ error: 'must be an IPv4 CIDR like 10.0.0.0/16' });
const labels = z.record(z.string(), z.string());
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
      resources: resources.default({ requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } }),
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
      sentinels: z.array(z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535).default(26379) }).strict()).min(1).optional(),
      sentinelName: z.string().min(1).optional(),
      /** Redis Cluster: redisUrl names one node or the managed cluster's configuration endpoint; egressCidrs must cover every node. */
      cluster: z.boolean().optional(),
      /** rediss:// with a private CA: the CA certificate (PEM, public) is mounted into the gateway pods. */
      tls: z
        .object({
          caCert: z.string().regex(/^-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----\s*$/, 'must be a PEM certificate').optional(),
          servername: z.string().min(1).optional(),
          rejectUnauthorized: z.boolean().optional(),
        })
        .strict()
        .optional(),
      /** Default `aigw:<stack>:`, so two stacks on one managed Redis never share budgets or spend. */
      keyPrefix: keyPrefix.optional(),
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
        keys: z
          .array(z.object({ name: k8sName, hash: z.never({ error: 'set key hashes as the secret clientKeyHashes.<key name>' }).optional() }).loose())
          .default([]),
        admin_key_hashes: z.never({ error: 'list admin key names in adminKeys and set their hashes as the secret adminKeyHashes.<name>' }).optional(),
      })
      .loose()
      .prefault({}),
    redis: z.never({ error: 'Redis is set by the stack key "redis" (and the secret redisPassword or redisUrl)' }).optional(),
    telemetry: z.never({ error: 'set the collector with the stack key telemetry.otlpEndpoint (it also opens the egress to it)' }).optional(),
  })
  .loose();

const port = z.number().int().min(1).max(65535);

/** How the public reaches the gateway: a Gateway API HTTPRoute (default) or an ingress-nginx Ingress. */
export const routeSchema = z
  .object({
    kind: z.enum(['gateway-api', 'ingress-nginx']).default('gateway-api'),
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
        acme: z.object({ email: z.email(), server: z.url({ protocol: /^https$/ }).default('https://acme-v02.api.letsencrypt.org/directory') }).strict().optional(),
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
        /** Namespace of the Gateway's proxy pods (the only peers allowed to the HTTP port); default: parentRef.namespace. */
        dataPlaneNamespace: k8sName.optional(),
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
  const createsCertificate = r.kind === 'ingress-nginx' || !!r.gateway.create;
  if (r.tls.clusterIssuer && r.tls.acme) issue(['tls'], 'set either clusterIssuer or acme, not both');
  if (createsCertificate && !r.tls.clusterIssuer && !r.tls.acme) issue(['tls'], `${r.kind === 'ingress-nginx' ? 'the Ingress' : 'a Gateway this stack creates'} needs a certificate issuer: set route.tls.clusterIssuer or route.tls.acme`);
  if (r.kind !== 'gateway-api') return;
  if (!!r.gateway.parentRef === !!r.gateway.create) issue(['gateway'], 'set exactly one of parentRef (a shared Gateway) or create (a Gateway of this stack)');
  if (r.gateway.create && !r.gateway.dataPlaneNamespace) issue(['gateway', 'dataPlaneNamespace'], "is required with create: the namespace where the GatewayClass's controller runs the proxy pods");
  if (r.gateway.dataPlaneNamespace === namespace) issue(['gateway', 'dataPlaneNamespace'], "must not be the stack's namespace: its default-deny policy would block the proxy pods");
}

/** A destination outside the render that the gateway may reach: a CIDR (or a namespace) and a port. */
const egressExtra = z
  .object({
    cidr: cidr.optional(),
    namespace: k8sName.optional(),
    port,
    protocol: z.enum(['TCP', 'UDP']).default('TCP'),
    /** Provider or proxy host names that resolve into this CIDR (a private endpoint's name). */
    hosts: z.array(z.string().min(1)).default([]),
  })
  .strict()
  .refine((e) => !!e.cidr !== !!e.namespace, 'set exactly one of cidr or namespace');

export const egressSchema = z
  .object({
    clusterDomain: z.string().default('cluster.local'),
    extra: z.array(egressExtra).default([]),
    /** An HTTPS proxy for upstream calls: the pods get HTTPS_PROXY/HTTP_PROXY/NO_PROXY, the policy the proxy. */
    proxy: z.object({ url: z.url({ protocol: /^http$/, error: 'must be an http:// URL (the proxy itself; https:// targets are tunnelled through it with CONNECT)' }), noProxy: z.array(z.string().min(1)).default([]) }).strict().optional(),
    dns: z
      .object({
        namespace: k8sName.default('kube-system'),
        podLabels: labels.default({ 'k8s-app': 'kube-dns' }),
        /** NodeLocal DNSCache's link-local address (often 169.254.20.10), when the cluster runs it. */
        nodeLocalAddress: z.ipv4().optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

export type EgressConfig = z.output<typeof egressSchema>;

const isPlainObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** The canary's gateway block: objects merge key by key, anything else (arrays too) replaces. */
export function mergeGatewayOverrides<T extends Record<string, unknown>>(base: T, overrides: Record<string, unknown>): T {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(overrides)) out[k] = isPlainObject(v) && isPlainObject(out[k]) ? mergeGatewayOverrides(out[k] as Record<string, unknown>, v) : v;
  return out as T;
}

export const stackConfigSchema = z
  .object({
    /** Guards apply per environment: production refuses auth mode "none". */
    environment: z.enum(['staging', 'production']),
    namespace: k8sName,
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
        tag: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, 'must be a Docker tag like 0.2.0').refine((t) => t !== 'latest', 'must not be latest'),
        /** Registry the credentials are for (default: the repository's host). */
        registry: z.string().min(1).optional(),
        /** Registry user; its password is the secret registryPassword. */
        username: z.string().min(1).optional(),
        platforms: z.array(z.enum(['linux/amd64', 'linux/arm64'])).min(1).default(['linux/amd64']),
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
        schedule: z.string().regex(/^(\S+\s+){4}\S+$/, 'must be a five-field cron schedule').default('*/15 * * * *'),
        /** Fail the probe when the chat completion takes longer than this. */
        maxLatencyMs: z.number().int().positive().default(500),
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
    gateway: gatewayBlock,
    // Secrets (set with `pulumi config set --secret [--path]`); format-checked here, used as pulumi.secret().
    // `pulumi config set --path` stores an all-digit value as a number; a key is still a string.
    providerApiKeys: z.record(z.string(), z.union([z.string().min(1), z.number().transform(String)])).default({}),
    clientKeyHashes: z.record(z.string(), z.string()).default({}),
    adminKeyHashes: z.record(z.string(), z.string()).default({}),
    redisPassword: z.string().min(16, 'must be at least 16 characters').optional(),
    redisUrl: z.string().regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL').optional(),
    /** Password or token for imageBuild.username (used only by the build, never in the cluster). */
    registryPassword: z.string().min(1).optional(),
    /** The smoke probe's client key (plaintext, for its Secret); the gateway gets only its hash. */
    smokeProbeKey: z.string().min(16, 'must be at least 16 characters').optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
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
      ctx.addIssue({ code: 'custom', path: ['telemetry', 'egressCidrs'], message: 'is required when otlpEndpoint is not an in-cluster Service (NAME.NAMESPACE.svc) or an IP address: list the collector\'s CIDRs' });
    }
    if (!c.image === !c.imageBuild) {
      ctx.addIssue({ code: 'custom', path: ['image'], message: c.image ? 'set image or imageBuild, not both' : 'is required (or imageBuild, to build and push from the stack)' });
    }
    if (c.imageBuild?.username && !c.registryPassword) {
      ctx.addIssue({ code: 'custom', path: ['registryPassword'], message: 'missing secret for imageBuild.username; set it with `pulumi config set --secret registryPassword <token>`' });
    }
    if (c.environment === 'production') {
      for (const [path, ref] of [[['image'], c.image], [['canary', 'image'], c.canary?.image]] as const) {
        if (ref && !DIGEST.test(ref)) ctx.addIssue({ code: 'custom', path: [...path], message: 'production needs an image pinned by digest (name@sha256:...); a tag can be moved' });
      }
    }
    if (c.canary && c.image && c.canary.image === c.image && c.canary.weight > 0 && !c.canary.gateway) {
      ctx.addIssue({ code: 'custom', path: ['canary', 'image'], message: 'is the same as image; a canary needs a different image or canary.gateway overrides' });
    }
    refineRoute(c.route, c.namespace, ctx);
    const canaryServer = c.canary?.gateway?.server as Record<string, unknown> | undefined;
    for (const key of ['port', 'metrics_port', 'host'].filter((k) => canaryServer?.[k] !== undefined)) {
      ctx.addIssue({ code: 'custom', path: ['canary', 'gateway', 'server', key], message: "the canary listens where the stable pods do (the Service, route and NetworkPolicies name the stable ports); remove it" });
    }
    if (c.canary?.gateway) {
      const merged = gatewayBlock.safeParse(mergeGatewayOverrides(c.gateway, c.canary.gateway));
      for (const issue of merged.success ? [] : merged.error.issues) ctx.addIssue({ code: 'custom', path: ['canary', 'gateway', ...issue.path], message: issue.message });
    }
  });

export type StackConfig = z.output<typeof stackConfigSchema>;
export type RedisConfig = z.output<typeof redisSchema>;

// ---------------------------------------------------------------- secrets

export type SecretKind = 'apiKey' | 'keyHash' | 'password' | 'redisUrl';

/** One secret the stack needs: where it lives in stack config and which env var carries it into the pod. */
export interface SecretSlot {
  /** Top-level config key, e.g. providerApiKeys. */
  key: 'providerApiKeys' | 'clientKeyHashes' | 'adminKeyHashes' | 'redisPassword' | 'redisUrl' | 'smokeProbeKey';
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
export function secretSlots(c: Pick<StackConfig, 'gateway' | 'adminKeys' | 'redis' | 'smokeProbe'> & Partial<Pick<StackConfig, 'canary'>>): SecretSlot[] {
  const blocks = gatewayBlocks(c);
  const providers = uniqueBy(blocks.flatMap((g) => g.providers), (p) => p.name);
  const slots: SecretSlot[] = providers.map((p) => ({ key: 'providerApiKeys', entry: p.name, env: `PROVIDER_${envSuffix(p.name)}_API_KEY`, kind: 'apiKey' }));
  const keys = uniqueBy(blocks.flatMap((g) => (g.auth.mode === 'keys' ? g.auth.keys : [])), (k) => k.name);
  for (const k of keys) slots.push({ key: 'clientKeyHashes', entry: k.name, env: `CLIENT_KEY_HASH_${envSuffix(k.name)}`, kind: 'keyHash' });
  for (const name of c.adminKeys) slots.push({ key: 'adminKeyHashes', entry: name, env: `ADMIN_KEY_HASH_${envSuffix(name)}`, kind: 'keyHash' });
  slots.push(c.redis.mode === 'in-cluster' ? { key: 'redisPassword', env: 'REDIS_PASSWORD', kind: 'password' } : { key: 'redisUrl', env: 'REDIS_URL', kind: 'redisUrl' });
  // The gateway gets the probe key's hash; the plaintext goes only into the probe's own Secret.
  if (c.smokeProbe?.enabled) slots.push({ key: 'smokeProbeKey', env: PROBE_KEY_HASH_ENV, kind: 'keyHash' });
  return slots;
}

export const PROBE_KEY_HASH_ENV = 'CLIENT_KEY_HASH_SMOKE_PROBE';

export function slotValue(c: StackConfig, s: SecretSlot): string | undefined {
  if (s.key === 'smokeProbeKey') return c.smokeProbeKey === undefined ? undefined : hashKey(c.smokeProbeKey);
  if (s.key === 'redisPassword' || s.key === 'redisUrl') return c[s.key];
  return c[s.key][s.entry!];
}

/**
 * A value of the right format for a slot, never a real secret: the renderer feeds these for
 * `secure:` entries, and the program validates its gateway config with them.
 */
export function placeholderSecret(s: Pick<SecretSlot, 'key' | 'entry' | 'kind'>): string {
  const digest = createHash('sha256').update(`placeholder:${slotPath(s)}`).digest('hex');
  switch (s.kind) {
    case 'keyHash':
      return `sha256:${digest}`;
    case 'redisUrl':
      return `rediss://:placeholder-${digest.slice(0, 16)}@redis.invalid:6380`;
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
      issue.code === 'unrecognized_keys'
        ? `${configKey(issue.path)}: unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`
        : `${configKey(issue.path)}: ${issue.message}`,
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
    else if (s.kind === 'redisUrl' && c.redis.mode === 'external' && c.redis.tls && !v.startsWith('rediss://')) problems.push(`${PROJECT}:${slotPath(s)}: redis.tls is set, so the URL must start with rediss://`);
    else if (s.kind === 'keyHash' && !SHA256.test(v)) problems.push(`${PROJECT}:${slotPath(s)}: must be "sha256:" followed by 64 lower-case hex digits (see \`npm run keygen\`)`);
  }
  if (problems.length) throw new StackConfigError(problems);
  return c;
}

export const parseStackConfig = (raw: Record<string, unknown>): StackConfig => checkSecrets(parsePlainStackConfig(raw));

/** Keys whose values are strings even when they look like JSON (a password of digits stays a string). */
export const STRING_KEYS: ReadonlySet<string> = new Set(['environment', 'namespace', 'image', 'redisPassword', 'redisUrl', 'smokeProbeKey', 'registryPassword']);

/** The top-level keys `parseStackConfig` knows, so a reader can fetch each from Pulumi config. */
export const STACK_KEYS = Object.keys(stackConfigSchema.shape) as (keyof StackConfig)[];
