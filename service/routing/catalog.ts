/**
 * The model catalog: which providers can serve a public model name, under which upstream
 * name and price, and which strategy routes it. Built once from config.
 */
import type { GatewayConfig, ProviderConfig, ProviderModelConfig, StrategyName } from '../config/schema';
import type { Prices } from '../cost/cost';
import { Endpoint, ENDPOINTS, ModelKind } from '../core/endpoints';
import { adapterFor } from '../providers/registry';

export type { Endpoint } from '../core/endpoints';

/** The endpoints a provider serves: its declared list, else the defaults for its type. */
export function providerEndpoints(provider: Pick<ProviderConfig, 'type' | 'endpoints'>): ReadonlySet<Endpoint> {
  if (provider.endpoints) return new Set(provider.endpoints);
  return new Set(adapterFor(provider.type).defaultEndpoints);
}

export interface Candidate {
  provider: ProviderConfig;
  /** The model's public name at this provider (providers[].models[].name): what the answer's model field says. */
  model: string;
  /** Name sent upstream (Azure: the deployment). */
  upstreamModel: string;
  /** Declared context window in tokens (providers[].models[].context_window), when known. */
  contextWindow?: number;
  /** How the model continues a cut stream, when declared (providers[].models[].continuation). */
  continuation?: ProviderModelConfig['continuation'];
  inputPerMillion: number;
  /** Price of prompt tokens the provider served from its prompt cache (defaults to inputPerMillion). */
  cachedInputPerMillion: number;
  outputPerMillion: number;
  kind: ModelKind;
  /** The model has no prices (`unpriced: true`): its requests are counted as unpriced, and cost strategies rank it last, never as free. */
  unpriced: boolean;
  /** Output tokens reserved against budgets for a request that sets no max tokens (providers[].models[].reserve_output_tokens), when set. */
  reserveOutputTokens?: number;
  /** Endpoints the provider serves (providers[].endpoints, else its type's defaults). */
  endpoints: ReadonlySet<Endpoint>;
  /** Index in config order; the last tie-breaker of every strategy, so plans are deterministic. */
  order: number;
}

export interface ModelRoute {
  /** Public name the client asked for. */
  model: string;
  strategy: StrategyName;
  candidates: Candidate[];
  /** Traffic split by provider name for `weighted` (falls back to providers[].weight). */
  weights?: Record<string, number>;
  /** Provider order for `priority` (falls back to providers[].priority). */
  order?: string[];
  /** `models.<name>.list_price`, for the savings figure; undefined: no savings are claimed (see priceRequest). */
  listPrice?: Prices;
  /**
   * Set on an endpoint-restricted route without candidates: `kind` when the model is not for
   * this endpoint (an embedding model on chat), `endpoint` when no provider of it serves the endpoint.
   */
  unserved?: 'kind' | 'endpoint';
}

export interface Catalog {
  resolve(model: string): ModelRoute | undefined;
  /** The route with only the candidates serving this endpoint (possibly none); built once per model and endpoint. */
  resolveFor(model: string, endpoint: Endpoint): ModelRoute | undefined;
  /** Every public model name, with the kind it serves, sorted. */
  list(): { id: string; kind: ModelKind; ownedBy: string }[];
}

/** Every provider model as a candidate: by public name (direct routes) and by provider (alias targets). */
function candidatesOf(config: GatewayConfig): { direct: Map<string, Candidate[]>; byProvider: Map<string, Map<string, Candidate>> } {
  const direct = new Map<string, Candidate[]>();
  const byProvider = new Map<string, Map<string, Candidate>>();
  let order = 0;
  for (const provider of config.providers) {
    const models = new Map<string, Candidate>();
    const endpoints = providerEndpoints(provider);
    for (const m of provider.models) {
      const c: Candidate = {
        provider,
        model: m.name,
        upstreamModel: m.upstream_name ?? m.name,
        contextWindow: m.context_window,
        continuation: m.continuation,
        inputPerMillion: m.input_per_million,
        cachedInputPerMillion: m.cached_input_per_million ?? m.input_per_million,
        outputPerMillion: m.output_per_million,
        kind: m.kind,
        unpriced: m.unpriced,
        reserveOutputTokens: m.reserve_output_tokens,
        endpoints,
        order: order++,
      };
      models.set(m.name, c);
      direct.set(m.name, [...(direct.get(m.name) ?? []), c]);
    }
    byProvider.set(provider.name, models);
  }
  return { direct, byProvider };
}

/** The route of every public name: provider models and aliases, with their strategy, weights, order and list price. */
function routesOf(config: GatewayConfig): Map<string, ModelRoute> {
  const { direct, byProvider } = candidatesOf(config);
  const makeRoute = (model: string, candidates: Candidate[]): ModelRoute => {
    const route = config.models[model];
    return { model, strategy: route?.strategy ?? config.routing.strategy, candidates, weights: route?.weights, order: route?.order, listPrice: route?.list_price };
  };
  const routes = new Map<string, ModelRoute>();
  for (const [model, candidates] of direct) routes.set(model, makeRoute(model, candidates));
  for (const [model, route] of Object.entries(config.models)) {
    const candidates = route.targets ? route.targets.map((t) => byProvider.get(t.provider)!.get(t.model)!) : (direct.get(model) ?? []);
    routes.set(model, makeRoute(model, candidates));
  }
  return routes;
}

export function buildCatalog(config: GatewayConfig): Catalog {
  const routes = routesOf(config);
  const listing = [...routes.values()]
    .map((r) => ({
      id: r.model,
      kind: r.candidates[0]?.kind ?? 'chat',
      ownedBy: config.models[r.model]?.targets ? 'gateway-alias' : r.candidates.map((c) => c.provider.name).join(','),
    }))
    .sort((a, b) => a.id.localeCompare(b.id));

  const forKind = (endpoint: Endpoint, c: Candidate) => ENDPOINTS[endpoint].kinds.includes(c.kind);
  const restricted = new Map<string, ModelRoute>();
  const resolveFor = (model: string, endpoint: Endpoint): ModelRoute | undefined => {
    const route = routes.get(model);
    if (!route) return undefined;
    const key = `${endpoint}\u0000${model}`;
    let r = restricted.get(key);
    if (!r) {
      const ofKind = route.candidates.filter((c) => forKind(endpoint, c));
      const candidates = ofKind.filter((c) => c.endpoints.has(endpoint));
      r = { ...route, candidates, unserved: candidates.length ? undefined : ofKind.length ? 'endpoint' : 'kind' };
      restricted.set(key, r);
    }
    return r;
  };

  return { resolve: (model) => routes.get(model), resolveFor, list: () => listing };
}
