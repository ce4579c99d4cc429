/**
 * The stacks accept a managed Redis Cluster: `ai-gateway:redis` in external mode with
 * `cluster: true` renders `redis.cluster: true` into the gateway config (validated by the
 * gateway's own schema), and refuses it together with Sentinel.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { StackConfigError, parsePlainStackConfig, parseStackConfig, placeholderSecret, secretSlots } from '../../infra/config';
import { renderGatewayConfig } from '../../infra/gatewayConfig';

const ROOT = join(__dirname, '..', '..');

function production(redis: Record<string, unknown>): Record<string, unknown> {
  const doc = parseYaml(readFileSync(join(ROOT, 'stacks', 'Pulumi.production.yaml'), 'utf8')) as { config: Record<string, unknown> };
  const raw: Record<string, unknown> = Object.fromEntries(Object.entries(doc.config).map(([k, v]) => [k.replace(/^ai-gateway:/, ''), v]));
  raw.redis = redis;
  for (const slot of secretSlots(parsePlainStackConfig(raw))) {
    if (slot.entry === undefined) raw[slot.key] = placeholderSecret(slot);
    else raw[slot.key] = { ...(raw[slot.key] as object), [slot.entry]: placeholderSecret(slot) };
  }
  return raw;
}

describe('stacks: a managed Redis Cluster', () => {
  it('redis.cluster renders into the gateway config, which the gateway parses as a cluster', () => {
    const rendered = renderGatewayConfig(parseStackConfig(production({ mode: 'external', egressCidrs: ['10.30.0.0/20'], cluster: true })), 'redis', 'production');
    assert.equal(rendered.parsed.redis?.cluster, true);
    assert.match(rendered.yaml, /cluster: true/);
    assert.doesNotMatch(rendered.yaml, /rediss?:\/\/[^$]/, 'the URL stays a reference to the Secret');
  });
  it('cluster with sentinels is refused, naming the key', () => {
    assert.throws(
      () => parseStackConfig(production({ mode: 'external', egressCidrs: ['10.30.0.0/20'], cluster: true, sentinels: [{ host: 's' }], sentinelName: 'm' })),
      (e: StackConfigError) => e instanceof StackConfigError && e.problems.some((p) => /ai-gateway:redis\.cluster: cluster and sentinels do not go together/.test(p)),
    );
  });
});
