/** Shared config and instance builders for the tenancy suites. */
import Redis from 'ioredis';
import { Registry } from 'prom-client';
import { GatewayConfig, GatewayConfigInput, parseConfig } from '../../service/config/schema';
import { createMetrics, Metrics } from '../../service/metrics/metrics';
import { createRedisClient } from '../../service/redis/client';
import type { Principal, Settlement } from '../../service/tenancy/contracts';
import { hashKey } from '../../service/tenancy/keys';
import { DEBT_FLUSH_MS, VIEW_MAX_AGE_MS } from '../../service/tenancy/lease';
import { waitFor as waitUntil } from '../helpers/wait';

export const KEYS = { alice: 'sk-gw-alice-test-key', bob: 'sk-gw-bob-test-key', admin: 'sk-gw-admin-test-key' };

let prefixCounter = 0;
/** A fresh Redis key prefix, so suites sharing one server never see each other's state. */
export const uniquePrefix = () => `t${process.pid}-${Date.now()}-${prefixCounter++}:`;

export function testConfig(overrides: Partial<GatewayConfigInput> = {}): GatewayConfig {
  return parseConfig({
    providers: [
      { name: 'cheap', base_url: 'http://127.0.0.1:1/v1', models: [{ name: 'gpt-x', input_per_million: 1, output_per_million: 2 }], rate_limit: { requests_per_minute: 5 } },
      { name: 'pricey', base_url: 'http://127.0.0.1:2/v1', models: [{ name: 'gpt-x', input_per_million: 10, output_per_million: 20 }] },
    ],
    models: { 'gpt-x': { list_price: { input_per_million: 10, output_per_million: 20 } } },
    auth: {
      keys: [
        { hash: hashKey(KEYS.alice), name: 'alice', team: 'red', project: 'web' },
        { hash: hashKey(KEYS.bob), name: 'bob', team: 'blue', project: 'batch' },
      ],
      admin_key_hashes: [hashKey(KEYS.admin)],
    },
    teams: [{ name: 'red' }, { name: 'blue' }],
    ...overrides,
  });
}

export const newMetrics = (): Metrics => createMetrics(new Registry(), { defaultMetrics: false });

export function connect(config: GatewayConfig, metrics: Metrics): Redis {
  return createRedisClient(config, { metrics })!;
}

/** test/helpers/wait.ts's loop, 8 s by default. */
export const waitFor = (cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 8000): Promise<void> => waitUntil(cond, what, timeoutMs);

/** Long enough for slots held on a replica that knows its window is spent to be written back, and for every replica's view to be renewed (lease.ts, "Exactness"). */
export const heldSlotsReleased = () => new Promise((r) => setTimeout(r, DEBT_FLUSH_MS + VIEW_MAX_AGE_MS + 100));

export const ready = (r: Redis) => waitFor(() => r.status === 'ready', 'redis ready');

export function settlement(principal: Principal, costUsd: number, extra: Partial<Settlement> = {}): Settlement {
  return {
    principal,
    provider: 'cheap',
    model: 'gpt-x',
    usage: { prompt_tokens: 100, completion_tokens: 50 },
    estimated: false,
    costUsd,
    listCostUsd: costUsd * 3,
    cached: false,
    at: Date.now(),
    ...extra,
  };
}

export async function metricValue(metrics: Metrics, name: keyof Metrics, labels: Record<string, string> = {}): Promise<number> {
  const m = metrics[name] as unknown as { get(): Promise<{ values: Array<{ value: number; labels: Record<string, string> }> }> };
  const { values } = await m.get();
  return values.filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)).reduce((a, v) => a + v.value, 0);
}
