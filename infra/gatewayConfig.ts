/**
 * The gateway's config file, rendered from stack config into a ConfigMap.
 *
 * Secrets never enter the file: it holds `${ENV_VAR}` references that the gateway fills from the
 * Secret-backed environment at start. The file is checked with the gateway's own
 * `parseConfigText` (format-valid placeholders stand in for the secrets), so a stack cannot deploy
 * a config the gateway would reject.
 */
import { createHash } from 'node:crypto';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { stringify } from 'yaml';
import { parseConfigText } from '../service/config/load';
import { ConfigError, GatewayConfig } from '../service/config/schema';
import { contentName } from './contentName';
import { APP, CONFIG_FILE, REDIS_PORT, objectLabels, serviceHost } from './common';
import { REDIS_CACHE_SERVICE } from './redis';
import { gatewayRedisTls } from './redisTls';
import { withProbeKey } from './smokeProbe';
import { PROJECT, SecretSlot, StackConfig, StackConfigError, placeholderSecret, secretSlots } from './config';

export interface RenderedGatewayConfig {
  /** The file as mounted at /etc/gateway/config.yaml. */
  readonly yaml: string;
  /** The config as the gateway will see it (with placeholders where secrets go). */
  readonly parsed: GatewayConfig;
  /** sha256 of the file: a pod template annotation, so a config change rolls the pods. */
  readonly checksum: string;
  /** The env vars the file references, each backed by a key of the gateway Secret. */
  readonly secretSlots: SecretSlot[];
}

const ref = (env: string) => `\${${env}}`;

/** Builds the gateway config object: the stack's gateway block plus secret references and Redis. */
function assemble(stack: StackConfig, redisServiceName: string, slots: SecretSlot[], stackName: string): Record<string, unknown> {
  const env = (key: SecretSlot['key'], entry?: string) => slots.find((s) => s.key === key && s.entry === entry)?.env;
  const { providers, auth, ...rest } = withProbeKey(stack, stack.gateway);
  const userRateLimit = (rest.rate_limit ?? {}) as Record<string, unknown>;
  const maxReplicas = stack.autoscaling?.enabled === false ? stack.replicas : (stack.autoscaling?.maxReplicas ?? stack.replicas);
  const keyRef = (name: string) => {
    const e = env('clientKeyHashes', name);
    return e ? { hash: ref(e) } : {};
  };
  return {
    ...rest,
    auth: {
      ...auth,
      keys: auth.keys.map((k) => ({ ...k, ...keyRef(k.name) })),
      ...(stack.adminKeys.length ? { admin_key_hashes: stack.adminKeys.map((n) => ref(env('adminKeyHashes', n)!)) } : {}),
    },
    // A provider with a key slot gets its key from the Secret; bedrock has none (it signs with the AWS chain).
    providers: providers.map((p) => {
      const keyEnv = env('providerApiKeys', p.name);
      return keyEnv ? { ...p, api_key: ref(keyEnv) } : p;
    }),
    // When Redis is unreachable each replica enforces limit / expected_replicas: the HPA maximum keeps the sum under the limit.
    rate_limit: { ...userRateLimit, expected_replicas: userRateLimit.expected_replicas ?? maxReplicas },
    redis: redisBlock(stack, redisServiceName, stackName),
    cache: cacheBlock(stack, rest.cache as Record<string, unknown> | undefined, stackName),
  };
}

/** The gateway's `redis` block: the in-cluster Service, or the managed URL (with Sentinel and the per-stack key prefix). */
function redisBlock(stack: StackConfig, redisServiceName: string, stackName: string): Record<string, unknown> {
  const r = stack.redis;
  if (r.mode === 'in-cluster') {
    return { host: serviceHost(redisServiceName, stack.namespace), port: REDIS_PORT, password: ref('REDIS_PASSWORD'), ...(r.keyPrefix ? { key_prefix: r.keyPrefix } : {}) };
  }
  return {
    url: ref('REDIS_URL'),
    // Two stacks on one managed Redis must never share budgets or spend.
    key_prefix: r.keyPrefix ?? defaultKeyPrefix(stackName),
    ...(r.sentinels ? { sentinels: r.sentinels, sentinel_name: r.sentinelName } : {}),
    ...(r.cluster ? { cluster: true } : {}),
    ...(r.tls ? { tls: gatewayRedisTls(r.tls) } : {}),
  };
}

export const defaultKeyPrefix = (stackName: string) => `aigw:${stackName}:`;

/** The response cache on its own Redis (allkeys-lru), when there is one: in-cluster (infra/redis.ts) or managed (redis.cache). */
function cacheBlock(stack: StackConfig, userCache: Record<string, unknown> | undefined, stackName: string): Record<string, unknown> | undefined {
  if (stack.redis.mode === 'external' && stack.redis.cache) {
    return { ...(userCache ?? {}), redis: { url: ref('REDIS_CACHE_URL'), key_prefix: stack.redis.keyPrefix ?? defaultKeyPrefix(stackName) } };
  }
  if (stack.redis.mode !== 'in-cluster' || !stack.redis.cache.enabled) return userCache;
  const redis = { host: serviceHost(REDIS_CACHE_SERVICE, stack.namespace), port: REDIS_PORT, password: ref('REDIS_PASSWORD'), ...(stack.redis.keyPrefix ? { key_prefix: stack.redis.keyPrefix } : {}) };
  return { ...(userCache ?? {}), redis };
}

/** Renders and validates the gateway config; throws StackConfigError naming `ai-gateway:gateway.<key>`. */
export function renderGatewayConfig(stack: StackConfig, redisServiceName: string, stackName = 'stack'): RenderedGatewayConfig {
  const slots = secretSlots(stack);
  const yaml =
    `# Rendered by the Pulumi program (infra/gatewayConfig.ts) from stack config ${PROJECT}:gateway.\n` +
    `# Environment references are filled at start from the ${APP} Secret; no secret is stored here.\n` +
    stringify(assemble(stack, redisServiceName, slots, stackName), { lineWidth: 0 });
  const placeholders = Object.fromEntries(slots.map((s) => [s.env, placeholderSecret(s)]));
  let parsed: GatewayConfig;
  try {
    parsed = parseConfigText(yaml, placeholders);
  } catch (err) {
    if (err instanceof ConfigError) throw new StackConfigError(err.problems.map((p) => `${PROJECT}:gateway${p.startsWith('(root)') ? p.slice('(root)'.length) : `.${p}`}`));
    throw err;
  }
  return { yaml, parsed, checksum: createHash('sha256').update(yaml).digest('hex'), secretSlots: slots };
}

export interface GatewayConfigMapArgs {
  namespace: pulumi.Input<string>;
  /** Object name; default ai-gateway-config (the canary's own config is ai-gateway-canary-config). */
  objectName?: string;
  stack: string;
  rendered: RenderedGatewayConfig;
}

/** The ConfigMap holding the gateway config file. */
export class GatewayConfigMap extends pulumi.ComponentResource {
  readonly configMap: k8s.core.v1.ConfigMap;
  readonly name: pulumi.Output<string>;
  readonly checksum: string;

  constructor(name: string, args: GatewayConfigMapArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ai-gateway:infra:GatewayConfig', name, {}, opts);
    this.checksum = args.rendered.checksum;
    this.configMap = new k8s.core.v1.ConfigMap(
      name,
      {
        // Content-named and immutable: a change is a new ConfigMap the pods roll onto (infra/contentName.ts).
        metadata: { name: contentName(args.objectName ?? `${APP}-config`, args.rendered.checksum), namespace: args.namespace, labels: objectLabels(args.stack, 'gateway') },
        immutable: true,
        data: { [CONFIG_FILE]: args.rendered.yaml },
      },
      { parent: this },
    );
    this.name = this.configMap.metadata.name;
    this.registerOutputs({ name: this.name });
  }
}
