/** Starts a real gateway (HTTP + metrics servers) in this process on 127.0.0.1 for a test. */
import { Writable } from 'node:stream';
import pino from 'pino';
import { parseConfig, GatewayConfigInput } from '../../service/config/schema';
import { RunningGateway, startGateway } from '../../service/server';
import { waitFor } from './wait';

export interface TestGateway extends RunningGateway {
  /** Every log line the gateway wrote (JSON text). */
  logs: string[];
}

type ConfigOverrides = Omit<GatewayConfigInput, 'server'> & { server?: GatewayConfigInput['server'] };

/** `env`: the OTEL_* variables the gateway should see (none by default: tracing off). */
export async function startTestGateway(input: ConfigOverrides, env?: Record<string, string | undefined>): Promise<TestGateway> {
  const config = parseConfig({
    ...input,
    server: { host: '127.0.0.1', port: 0, metrics_port: 0, log_level: 'info', ...input.server },
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  const running = await startGateway(config, { logger: pino({ level: config.server.log_level }, sink), env });
  return Object.assign(running, { logs });
}

/**
 * Waits until the gateway's /ready answers 200, as Kubernetes does before it sends a replica traffic:
 * a gateway with Redis configured answers 503 until its first Redis connection, and serves before
 * that on its per-replica fallbacks (the cache bypassed, its writes skipped). A test whose first
 * requests need Redis calls this; throws with the last answer when `timeoutMs` passes.
 */
export async function untilReady(gw: Pick<RunningGateway, 'url'>, timeoutMs = 5000): Promise<void> {
  let last = '';
  const ready = async () => {
    const res = await fetch(`${gw.url}/ready`);
    last = `${res.status} ${await res.text()}`;
    return res.status === 200;
  };
  await waitFor(ready, 'the gateway to be ready', timeoutMs).catch((err: Error) => {
    throw new Error(`${err.message}: /ready last answered ${last}`);
  });
}

/** A provider entry for a fake upstream serving the given models at the given prices. */
export function provider(
  name: string,
  url: string,
  models: Array<
    | string
    | {
        name: string;
        upstream_name?: string;
        input_per_million?: number;
        cached_input_per_million?: number;
        output_per_million?: number;
        kind?: 'chat' | 'completion' | 'embedding';
        context_window?: number;
        unpriced?: boolean;
        reserve_output_tokens?: number;
      }
  >,
  extra: Record<string, unknown> = {},
) {
  return {
    name,
    base_url: url,
    api_key: `sk-provider-${name}-secret`,
    timeout_ms: 2000,
    models: models.map((m) => (typeof m === 'string' ? { name: m, input_per_million: 1, output_per_million: 2 } : m)),
    ...extra,
  };
}

/** A provider entry without an api_key (bedrock signs with AWS credentials and refuses one). */
export function keyless<T extends { api_key?: string }>(p: T): Omit<T, 'api_key'> {
  const { api_key: _key, ...rest } = p;
  return rest;
}

/** Reads one counter/gauge sample from the Prometheus text exposition. */
export async function metricValue(metricsUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

export interface SpendTotals {
  requests: number;
  cost_usd: number;
  prompt_tokens: number;
  completion_tokens: number;
  unpriced_requests: number;
  estimated_requests: number;
}

/** A team's totals from GET /v1/gateway/spend (retried for up to 10 s while Redis is still connecting: 503). */
export async function spendTotals(gatewayUrl: string, adminKey: string, team: string): Promise<SpendTotals> {
  const get = () => fetch(`${gatewayUrl}/v1/gateway/spend?team=${team}`, { headers: { authorization: `Bearer ${adminKey}` } });
  let res = await get();
  for (let i = 0; res.status === 503 && i < 200; i++) {
    await new Promise((r) => setTimeout(r, 50));
    res = await get();
  }
  if (res.status !== 200) throw new Error(`spend report: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { totals: SpendTotals }).totals;
}

/** Waits until a team's spend report counts at least `requests` (spend writes are coalesced), then returns its totals. */
export async function waitForSpend(gatewayUrl: string, adminKey: string, team: string, requests: number): Promise<SpendTotals> {
  const until = Date.now() + 10_000;
  for (;;) {
    const t = await spendTotals(gatewayUrl, adminKey, team);
    if (t.requests >= requests || Date.now() > until) return t;
    await new Promise((r) => setTimeout(r, 50));
  }
}
