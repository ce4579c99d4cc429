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
import { APP, CONFIG_FILE, REDIS_PORT, objectLabels, serviceHost } from './common';
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
function assemble(stack: StackConfig, redisServiceName: string, slots: SecretSlot[]): Record<string, unknown> {
  const env = (key: SecretSlot['key'], entry?: string) => slots.find((s) => s.key === key && s.entry === entry)?.env;
  const { providers, auth, ...rest } = stack.gateway;
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
    providers: providers.map((p) => ({ ...p, api_key: ref(env('providerApiKeys', p.name)!) })),
    // When Redis is unreachable each replica enforces limit / expected_replicas: the HPA maximum keeps the sum under the limit.
    rate_limit: { ...userRateLimit, expected_replicas: userRateLimit.expected_replicas ?? maxReplicas },
    redis:
      stack.redis.mode === 'in-cluster'
        ? { host: serviceHost(redisServiceName, stack.namespace), port: REDIS_PORT, password: ref('REDIS_PASSWORD') }
        : { url: ref('REDIS_URL') },
  };
}

/** Renders and validates the gateway config; throws StackConfigError naming `ai-gateway:gateway.<key>`. */
export function renderGatewayConfig(stack: StackConfig, redisServiceName: string): RenderedGatewayConfig {
  const slots = secretSlots(stack);
  const yaml =
    `# Rendered by the Pulumi program (infra/gatewayConfig.ts) from stack config ${PROJECT}:gateway.\n` +
    `# Environment references are filled at start from the ${APP} Secret; no secret is stored here.\n` +
    stringify(assemble(stack, redisServiceName, slots), { lineWidth: 0 });
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
        metadata: { name: args.objectName ?? `${APP}-config`, namespace: args.namespace, labels: objectLabels(args.stack, 'gateway') },
        data: { [CONFIG_FILE]: args.rendered.yaml },
      },
      { parent: this },
    );
    this.name = this.configMap.metadata.name;
    this.registerOutputs({ name: this.name });
  }
}
