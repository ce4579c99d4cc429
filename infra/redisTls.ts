/**
 * A managed Redis over TLS with a private CA (`redis.tls` in stack config, `mode: external`): the CA
 * certificate goes into a content-named ConfigMap (a CA certificate is public; a new CA is a new
 * ConfigMap the pods roll onto), mounted read-only into the gateway pods, and the gateway config's
 * `redis.tls` points at it (`ca_file`, `servername`, `reject_unauthorized`). The URL (secret
 * `redisUrl`) must then be rediss://.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { objectLabels } from './common';
import type { RedisConfig } from './config';
import { contentName, digest } from './contentName';

export const REDIS_CA_DIR = '/etc/redis-ca';
export const REDIS_CA_FILE = 'ca.crt';

type ExternalTls = NonNullable<Extract<RedisConfig, { mode: 'external' }>['tls']>;

/** The gateway config's `redis.tls` block (pure). */
export function gatewayRedisTls(tls: ExternalTls): Record<string, unknown> {
  return {
    ...(tls.caCert ? { ca_file: `${REDIS_CA_DIR}/${REDIS_CA_FILE}` } : {}),
    ...(tls.servername ? { servername: tls.servername } : {}),
    ...(tls.rejectUnauthorized !== undefined ? { reject_unauthorized: tls.rejectUnauthorized } : {}),
  };
}

/** The CA ConfigMap, or undefined when the stack has no private CA. */
export function redisCaConfigMap(args: { namespace: pulumi.Input<string>; stack: string; redis: RedisConfig }, opts: pulumi.CustomResourceOptions): k8s.core.v1.ConfigMap | undefined {
  const caCert = args.redis.mode === 'external' ? args.redis.tls?.caCert : undefined;
  if (!caCert) return undefined;
  return new k8s.core.v1.ConfigMap(
    'redis-ca',
    {
      metadata: { name: contentName('redis-ca', digest('redis-ca', caCert)), namespace: args.namespace, labels: objectLabels(args.stack, 'gateway') },
      immutable: true,
      data: { [REDIS_CA_FILE]: caCert },
    },
    opts,
  );
}
