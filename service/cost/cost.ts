/**
 * Prices and cost: pure functions. Prices are USD per million tokens, as in the config.
 */
import type { GatewayConfig } from '../config/schema';
import type { Usage } from '../tenancy/contracts';

export interface Prices {
  input_per_million: number;
  output_per_million: number;
  /** Price of the prompt tokens served from the provider's prompt cache (usage.cached_tokens); input_per_million when unset. */
  cached_input_per_million?: number;
}

/**
 * USD for one request's usage at the given prices. Cached prompt tokens are part of
 * prompt_tokens and cost the cached-input price; reasoning tokens are part of
 * completion_tokens and cost the output price, as providers bill them.
 */
export function costUsd(usage: Usage, prices: Prices): number {
  const cached = usage.cached_tokens && prices.cached_input_per_million !== undefined ? Math.min(usage.cached_tokens, usage.prompt_tokens) : 0;
  const input = (usage.prompt_tokens - cached) * prices.input_per_million + cached * (prices.cached_input_per_million ?? 0);
  return (input + usage.completion_tokens * prices.output_per_million) / 1_000_000;
}

/**
 * Spend is stored in integer nano-USD so that sums over millions of requests, across replicas,
 * are exact (Redis HINCRBY) rather than drifting floats.
 */
export const NANO = 1e9;
export const toNanoUsd = (usd: number): number => Math.round(usd * NANO);
export const fromNanoUsd = (nano: number): number => nano / NANO;

export interface PriceTable {
  /** Prices of `providerModel` (the name in providers[].models[].name) at `provider`; undefined when not configured. */
  providerPrice(provider: string, providerModel: string): Prices | undefined;
  /** `models.<name>.list_price`; undefined when not configured (then no routing savings are claimed). */
  listPrice(model: string): Prices | undefined;
}

export function createPriceTable(config: Pick<GatewayConfig, 'providers' | 'models'>): PriceTable {
  const byProvider = new Map<string, Prices>();
  for (const p of config.providers) {
    for (const m of p.models) byProvider.set(`${p.name}\u0000${m.name}`, { input_per_million: m.input_per_million, output_per_million: m.output_per_million });
  }
  return {
    providerPrice: (provider, model) => byProvider.get(`${provider}\u0000${model}`),
    listPrice: (model) => config.models[model]?.list_price,
  };
}

/**
 * Cost and list cost of one request. Without a list price the list cost equals the cost
 * (no savings claimed).
 */
export function priceRequest(usage: Usage, prices: Prices | undefined, listPrice: Prices | undefined): { costUsd: number; listCostUsd: number } {
  const cost = prices ? costUsd(usage, prices) : 0;
  return { costUsd: cost, listCostUsd: listPrice ? costUsd(usage, listPrice) : cost };
}
