/**
 * Prices and cost: pure functions. Prices are USD per million tokens, as in the config.
 */
import type { Usage } from '../core/endpoints';

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

/**
 * The one pricing rule of a served request, used by the gateway's accounting: the cost at the
 * serving provider's prices (none for a cache hit), and the list cost at the model's
 * `models.<name>.list_price`. Without a list price the list cost equals the cost, so no savings
 * are claimed: neither routing savings nor cache savings.
 */
export function priceRequest(usage: Usage, prices: Prices | undefined, listPrice: Prices | undefined): { costUsd: number; listCostUsd: number } {
  const cost = prices ? costUsd(usage, prices) : 0;
  return { costUsd: cost, listCostUsd: listPrice ? costUsd(usage, listPrice) : cost };
}

/** What one candidate that may serve a request says about its price (routing's Candidate fits). */
export interface ReservePrice {
  inputPerMillion: number;
  outputPerMillion: number;
  /** `unpriced: true`: its cost is unknown and recorded as 0, so it reserves 0. */
  unpriced: boolean;
  /** providers[].models[].reserve_output_tokens: output reserved for a request that sets no max tokens. */
  reserveOutputTokens?: number;
}

/**
 * The most a request can cost before its usage is known, reserved against budgets at admission:
 * over the candidates that may serve it, the highest of the expected input tokens at the input
 * price plus the maximum output tokens at the output price. Maximum output: the request's max
 * tokens (0 for embeddings), else the candidate's reserve_output_tokens, else `defaultOutputTokens`
 * (routing.reserve_output_tokens), for each of the `choices` it asks for (n, best_of). Input is an
 * estimate (about 4 body bytes a token), not a bound.
 */
export function maxCostUsd(candidates: readonly ReservePrice[], inputTokens: number, maxOutputTokens: number | undefined, defaultOutputTokens: number, choices = 1): number {
  let max = 0;
  for (const c of candidates) {
    if (c.unpriced) continue;
    const output = (maxOutputTokens ?? c.reserveOutputTokens ?? defaultOutputTokens) * choices;
    max = Math.max(max, costUsd({ prompt_tokens: inputTokens, completion_tokens: output }, { input_per_million: c.inputPerMillion, output_per_million: c.outputPerMillion }));
  }
  return max;
}
