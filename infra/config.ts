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

const quantity = z.union([z.string().regex(/^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/, 'must be a Kubernetes quantity like 250m, 1, 512Mi'), z.number().positive().transform(String)]);
const resourcePair = z.object({ cpu: quantity, memory: quantity }).strict();
const resources = z.object({ requests: resourcePair, limits: resourcePair }).strict();

const cidr = z.string().regex(/^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/, 'must be an IPv4 CIDR like 10.0.0.0/16');
const labels = z.record(z.string(), z.string());
const percent = z.number().int().min(1).max(100);

export const redisSchema = z.discriminatedUnion('mode', [
  z
    .object({
      mode: z.literal('in-cluster'),
      image: image.default('redis:7.4.1-alpine'),
      persistence: z
        .object({ enabled: z.boolean(), size: quantity.default('1Gi'), storageClass: z.string().optional() })
        .strict()
        .prefault({ enabled: false }),
      resources: resources.default({ requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } }),
    })
    .strict(),
  z
    .object({
      /** Managed Redis: the URL (with its password) is the secret `redisUrl`. */
      mode: z.literal('external'),
      port: z.number().int().min(1).max(65535).default(6379),
      /** Where the managed Redis lives, for the gateway's egress NetworkPolicy. */
      egressCidrs: z.array(cidr).min(1),
    })
    .strict(),
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

export const stackConfigSchema = z
  .object({
    /** Guards apply per environment: production refuses auth mode "none". */
    environment: z.enum(['staging', 'production']),
    namespace: k8sName,
    image,
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
    ingress: z
      .object({
        host: hostname,
        className: z.string().default('nginx'),
        /** cert-manager ClusterIssuer that signs the TLS certificate. */
        clusterIssuer: k8sName,
        tlsSecretName: k8sName.optional(),
        /** Namespace of the ingress controller: the only one allowed to reach the gateway's HTTP port. */
        controllerNamespace: k8sName.default('ingress-nginx'),
        /** Seconds nginx waits between two reads from the gateway (long streams). */
        readTimeoutSeconds: z.number().int().min(30).max(86_400).default(3600),
      })
      .strict(),
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
        /** Percent of requests nginx sends to the canary; 0 removes the canary. */
        weight: z.number().int().min(0).max(100),
        replicas: z.number().int().min(1).max(20).default(1),
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
    if (c.telemetry && !c.telemetry.egressCidrs && collectorPeer(c.telemetry.otlpEndpoint, c.namespace).kind === 'external') {
      ctx.addIssue({ code: 'custom', path: ['telemetry', 'egressCidrs'], message: 'is required when otlpEndpoint is not an in-cluster Service (NAME.NAMESPACE.svc) or an IP address: list the collector\'s CIDRs' });
    }
    if (c.canary && c.canary.image === c.image && c.canary.weight > 0) {
      ctx.addIssue({ code: 'custom', path: ['canary', 'image'], message: 'is the same as image; a canary needs a different image' });
    }
  });

export type StackConfig = z.output<typeof stackConfigSchema>;
export type RedisConfig = z.output<typeof redisSchema>;

// ---------------------------------------------------------------- secrets

export type SecretKind = 'apiKey' | 'keyHash' | 'password' | 'redisUrl';

/** One secret the stack needs: where it lives in stack config and which env var carries it into the pod. */
export interface SecretSlot {
  /** Top-level config key, e.g. providerApiKeys. */
  key: 'providerApiKeys' | 'clientKeyHashes' | 'adminKeyHashes' | 'redisPassword' | 'redisUrl';
  /** Entry inside an object-valued key (provider or key name), absent for scalar keys. */
  entry?: string;
  env: string;
  kind: SecretKind;
}

const envSuffix = (name: string) => name.toUpperCase().replace(/[^A-Z0-9]/g, '_');

/** `pulumi config set --secret` command that sets a slot, for error messages and docs. */
export const slotPath = (s: Pick<SecretSlot, 'key' | 'entry'>) => (s.entry === undefined ? s.key : `${s.key}.${s.entry}`);

const SHA256 = /^sha256:[0-9a-f]{64}$/;

/** Every secret the stack needs, derived from its plain config (providers, key names, Redis mode). */
export function secretSlots(c: Pick<StackConfig, 'gateway' | 'adminKeys' | 'redis'>): SecretSlot[] {
  const slots: SecretSlot[] = c.gateway.providers.map((p) => ({ key: 'providerApiKeys', entry: p.name, env: `PROVIDER_${envSuffix(p.name)}_API_KEY`, kind: 'apiKey' }));
  if (c.gateway.auth.mode === 'keys') {
    for (const k of c.gateway.auth.keys) slots.push({ key: 'clientKeyHashes', entry: k.name, env: `CLIENT_KEY_HASH_${envSuffix(k.name)}`, kind: 'keyHash' });
  }
  for (const name of c.adminKeys) slots.push({ key: 'adminKeyHashes', entry: name, env: `ADMIN_KEY_HASH_${envSuffix(name)}`, kind: 'keyHash' });
  slots.push(c.redis.mode === 'in-cluster' ? { key: 'redisPassword', env: 'REDIS_PASSWORD', kind: 'password' } : { key: 'redisUrl', env: 'REDIS_URL', kind: 'redisUrl' });
  return slots;
}

export function slotValue(c: StackConfig, s: SecretSlot): string | undefined {
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
    else if (s.kind === 'keyHash' && !SHA256.test(v)) problems.push(`${PROJECT}:${slotPath(s)}: must be "sha256:" followed by 64 lower-case hex digits (see \`npm run keygen\`)`);
  }
  if (problems.length) throw new StackConfigError(problems);
  return c;
}

export const parseStackConfig = (raw: Record<string, unknown>): StackConfig => checkSecrets(parsePlainStackConfig(raw));

/** Keys whose values are strings even when they look like JSON (a password of digits stays a string). */
export const STRING_KEYS: ReadonlySet<string> = new Set(['environment', 'namespace', 'image', 'redisPassword', 'redisUrl']);

/** The top-level keys `parseStackConfig` knows, so a reader can fetch each from Pulumi config. */
export const STACK_KEYS = Object.keys(stackConfigSchema.shape) as (keyof StackConfig)[];
