/**
 * The handler for the endpoints the gateway inspects (chat, completions, embeddings, responses).
 * It only sequences named steps:
 *   authenticate -> validate -> resolve model -> admit (limits, budget) -> cache lookup
 *   -> routing plan -> execute (retry, failover, breaker) -> relay -> account -> cache store
 */
import { Cancel } from '../upstream/cancel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Endpoint, ENDPOINTS, EndpointSpec } from '../core/endpoints';
import { OBJECT_COLLECTIONS, referencedIds } from '../core/passthrough-paths';
import { priceRequest } from '../cost/cost';
import { adapterFor } from '../providers/registry';
import { estimateCompletionTokens, estimatePromptTokens } from '../cost/tokens';
import type { Candidate, ModelRoute } from '../routing/catalog';
import { planRoute } from '../routing/strategies';
import type { Admission, Principal, TokenReservation, Usage } from '../tenancy/contracts';
import { assertOwned, itemIds, STORED_RESPONSE_TTL_SECONDS } from '../tenancy/objects';
import type { Success } from '../upstream/executor';
import { firstResponseId } from '../core/sse';
import { relaySse } from '../upstream/sse-relay';
import { readJsonBody } from './body';
import type { GatewayContext } from './context';
import { badRequest, GatewayError, modelNotFound } from '../core/errors';
import { modelRewriter } from './model-name';
import { recordOf, RequestRecord } from './request-context';
import { sendError, sendJson } from './respond';
import { validateRequest, ValidRequest } from './validate';

/** Output tokens assumed by cost-optimal routing when the request sets no max_tokens. */
const DEFAULT_EXPECTED_OUTPUT_TOKENS = 256;

export function resolveRoute(ctx: GatewayContext, endpoint: Endpoint, req: ValidRequest): ModelRoute {
  const route = ctx.catalog.resolveFor(req.model, endpoint);
  if (!route) throw modelNotFound(req.model);
  if (route.unserved === 'endpoint') {
    throw new GatewayError(404, 'not_found_error', 'endpoint_not_supported', `No provider of the model "${req.model}" serves ${ENDPOINTS[endpoint].path} through this gateway.`, {}, 'model');
  }
  if (!route.candidates.length) throw badRequest(`The model "${req.model}" does not support ${ENDPOINTS[endpoint].path}.`, 'model_not_supported', 'model');
  return route;
}

/**
 * A request continuing a stored response (previous_response_id) must be the team's own and
 * goes to the provider holding it: the route keeps only that provider's candidates.
 */
async function pinToPreviousResponse(ctx: GatewayContext, principal: Principal, route: ModelRoute, req: ValidRequest): Promise<ModelRoute> {
  const id = req.body.previous_response_id;
  if (typeof id !== 'string') return route;
  const owner = await ctx.objects.lookup(id);
  if (!owner || owner.team !== principal.team) {
    throw new GatewayError(404, 'invalid_request_error', 'previous_response_not_found', `Previous response with id '${id.slice(0, 128)}' not found.`, {}, 'previous_response_id');
  }
  const candidates = route.candidates.filter((c) => c.provider.name === owner.provider);
  if (!candidates.length) throw badRequest(`The previous response is held by a provider that does not serve the model "${req.model}".`, 'invalid_value', 'previous_response_id');
  return { ...route, candidates };
}

/** Expected token mix of a request: about 4 body bytes a token in, max_tokens (or a default) out. */
export function expectedTokensOf(req: ValidRequest, endpoint: Endpoint, bodyBytes: number): { input: number; output: number } {
  return { input: Math.ceil(bodyBytes / 4), output: endpoint === 'embedding' ? 0 : (req.maxTokens ?? DEFAULT_EXPECTED_OUTPUT_TOKENS) };
}

export function makePlan(ctx: GatewayContext, route: ModelRoute, req: ValidRequest, expectedTokens: { input: number; output: number }): Candidate[] {
  const open = route.candidates.filter((c) => ctx.breakers.canPass(c.provider.name, route.model));
  // All circuits open: the executor reports it (503 with retry-after) without calling anyone.
  if (!open.length) return route.candidates;
  const r = ctx.config.routing;
  return planRoute(open, {
    strategy: route.strategy,
    stats: (c) => ctx.stats.get(c.provider.name, route.model),
    random: ctx.random,
    expectedTokens,
    latencyMetric: req.stream ? 'ttfbMs' : 'totalMs',
    weights: route.weights,
    order: route.order,
    balanced: r.balanced_weights,
    now: ctx.now(),
    exploration: { share: r.exploration.share, reprobeAfterMs: r.exploration.reprobe_after_ms },
  });
}

/**
 * The body sent to one candidate: its upstream model name, and a request for usage on streams;
 * translated by the adapter for a provider that does not speak the OpenAI wire format.
 */
function upstreamBodies(req: ValidRequest, endpoint: Endpoint, spec: EndpointSpec): (c: Candidate) => string {
  const memo = new Map<string, string>();
  return (c) => {
    const translation = adapterFor(c.provider.type).translation;
    const key = translation ? `${c.provider.name}\u0000${c.upstreamModel}` : c.upstreamModel;
    let s = memo.get(key);
    if (s === undefined) {
      if (translation) s = translation.requestBody(endpoint, req.body, c.upstreamModel, c.provider, req.stream);
      else {
        const body: Record<string, unknown> = { ...req.body, model: c.upstreamModel };
        if (req.stream && spec.streamUsageOption) body.stream_options = { ...(req.body.stream_options as object), include_usage: true };
        s = JSON.stringify(body);
      }
      memo.set(key, s);
    }
    return s;
  };
}

/** Usage the provider reported, or an estimate from the request and the produced text. */
export function resolveUsage(req: ValidRequest, reported: Usage | undefined, outputText: string): { usage: Usage; estimated: boolean } {
  if (reported) return { usage: reported, estimated: false };
  return { usage: { prompt_tokens: estimatePromptTokens(req.body), completion_tokens: estimateCompletionTokens(outputText) }, estimated: true };
}

/** What the request record keeps of the usage and the answering model, for the trace. */
export function noteUsage(rec: RequestRecord, usage: Usage, estimated: boolean, model: unknown): void {
  rec.usage = { usage, estimated };
  rec.responseModel = typeof model === 'string' ? model : undefined;
}

export function account(ctx: GatewayContext, principal: Principal, reservation: TokenReservation | undefined, route: ModelRoute, c: Candidate | undefined, usage: Usage, estimated: boolean, cached: boolean): number {
  const prices = c && !cached ? { input_per_million: c.inputPerMillion, output_per_million: c.outputPerMillion, cached_input_per_million: c.cachedInputPerMillion } : undefined;
  const { costUsd, listCostUsd } = priceRequest(usage, prices, route.listPrice);
  ctx.tenancy.settle({ principal, provider: c?.provider.name ?? 'cache', model: route.model, usage, estimated, unpriced: !cached && !!c?.unpriced, costUsd, listCostUsd, cached, at: ctx.now(), reservation });
  return costUsd;
}

export function setOutcomeHeaders(res: ServerResponse, success: Pick<Success, 'candidate' | 'attempts'>): void {
  res.setHeader('x-gateway-provider', success.candidate.provider.name);
  res.setHeader('x-gateway-attempts', String(success.attempts));
}

/** Records a stored response's id, and its output items' (item_reference may name them), against the team and provider (not when the client sent store: false). */
function recordStoredResponse(ctx: GatewayContext, principal: Principal, c: Candidate, valid: ValidRequest, id: unknown, items: string[] = []): Promise<void> | undefined {
  if (typeof id !== 'string' || valid.body.store === false) return undefined;
  const owner = { team: principal.team, provider: c.provider.name };
  return ctx.objects.recordMany([id, ...items], owner, STORED_RESPONSE_TTL_SECONDS);
}

async function relayStream(ctx: GatewayContext, res: ServerResponse, rec: RequestRecord, valid: ValidRequest, principal: Principal, admission: Admission, route: ModelRoute, success: Success, endpoint: Endpoint) {
  const c = success.candidate;
  res.statusCode = 200;
  res.setHeader('content-type', 'text/event-stream; charset=utf-8');
  res.setHeader('cache-control', 'no-cache, no-transform');
  res.setHeader('x-accel-buffering', 'no');
  // No separate flush: the headers leave with the first event, which is already in hand (one
  // write and one wake-up of the client instead of two).
  ctx.metrics.streamTtfb.observe({ provider: c.provider.name, model: route.model }, (ctx.now() - rec.startedAt) / 1000);
  // A stored response is recorded before its first event reaches the client, so a follow-up request finds it on any replica.
  const createdId = endpoint === 'responses' ? firstResponseId(success.stream!.first) : undefined;
  if (createdId) await recordStoredResponse(ctx, principal, c, valid, createdId);
  const result = await relaySse(success.stream!, res, !valid.clientWantsUsage, endpoint === 'responses', modelRewriter(ctx.config, route.model, c));
  if (endpoint === 'responses') await recordStoredResponse(ctx, principal, c, valid, createdId ?? result.responseId, result.itemIds);
  const totalMs = ctx.now() - success.startedAt;
  if (result.interrupted) {
    ctx.metrics.streamInterruptions.inc({ provider: c.provider.name, model: route.model });
    ctx.stats.recordFailure(c.provider.name, route.model);
    ctx.breakers.record(c.provider.name, route.model, false);
    rec.streamOutcome = result.interrupted === 'cut' ? 'interrupted' : 'invalid_upstream_stream';
  } else if (!result.clientGone) {
    ctx.stats.recordTotal(c.provider.name, route.model, totalMs);
    ctx.metrics.upstreamLatency.observe({ provider: c.provider.name, model: route.model, phase: 'total' }, totalMs / 1000);
  }
  if (result.clientGone) {
    ctx.metrics.clientDisconnects.inc({ endpoint: rec.endpoint });
    rec.streamOutcome = 'client_gone';
  }
  // The provider bills what it produced even when the stream was cut: account it.
  const { usage, estimated } = resolveUsage(valid, result.usage, result.outputText);
  noteUsage(rec, usage, estimated, result.model);
  rec.costUsd = account(ctx, principal, admission.reservation, route, c, usage, estimated, false);
}

/** Serves one validated request body; the principal is on the request record. */
export function inferenceHandler(ctx: GatewayContext, endpoint: Endpoint) {
  // Ids a request names (previous_response_id, file_id, vector_store_ids...) must be the team's own. Chat,
  // completions and embeddings pay for the scan only when the pass-through lets teams create such objects.
  const checkReferences = endpoint === 'responses' || ctx.config.passthrough.some((e) => e.path !== '/v1/responses' && OBJECT_COLLECTIONS.includes(e.path));
  return async (req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> => {
    const rec = recordOf(res);
    rec.endpoint = endpoint;
    const spec = ENDPOINTS[endpoint];
    const principal = rec.principal!; // authenticated before the body was read
    const valid = validateRequest(endpoint, body);
    let route = resolveRoute(ctx, endpoint, valid);
    rec.model = route.model;
    rec.strategy = route.strategy;
    rec.stream = valid.stream;

    if (endpoint === 'responses') route = await pinToPreviousResponse(ctx, principal, route, valid);
    if (checkReferences) await assertOwned(ctx.objects, principal.team, referencedIds(valid.body));
    const expectedTokens = expectedTokensOf(valid, endpoint, Number(req.headers['content-length']) || JSON.stringify(valid.body).length);
    const admission = await ctx.tenancy.admit(principal, route.model, expectedTokens.input + expectedTokens.output);
    for (const k in admission.headers) res.setHeader(k, admission.headers[k]);

    const cacheKey = valid.stream ? null : ctx.cache.keyFor(principal, route.model, valid.body, req.headers);
    if (cacheKey && (await answerFromCache(ctx, res, rec, valid, principal, admission, route, spec, cacheKey))) return;

    const clientAbort = new Cancel();
    const onClose = () => {
      if (!res.writableFinished) clientAbort.abort();
    };
    res.on('close', onClose);
    let result;
    try {
      result = await ctx.executor.execute({
        model: route.model,
        endpoint,
        plan: makePlan(ctx, route, valid, expectedTokens),
        bodyFor: upstreamBodies(valid, endpoint, spec),
        stream: valid.stream,
        requestId: rec.requestId,
        clientSignal: clientAbort.signal,
        deadline: rec.startedAt + ctx.config.routing.timeout_ms,
        trace: rec.trace,
      });
    } finally {
      res.off('close', onClose);
    }
    res.setHeader('x-gateway-attempts', String(result.attempts));
    if (!result.ok) {
      ctx.tenancy.release(principal, admission.reservation);
      if (result.clientGone) ctx.metrics.clientDisconnects.inc({ endpoint });
      throw result.error;
    }
    setOutcomeHeaders(res, result);
    rec.provider = result.candidate.provider.name;
    rec.attempts = result.attempts;

    if (result.candidate.upstreamModel !== route.model) rec.upstreamModel = result.candidate.upstreamModel;
    if (result.stream) return relayStream(ctx, res, rec, valid, principal, admission, route, result, endpoint);

    return relayJson(ctx, res, rec, valid, principal, admission, route, result, endpoint, cacheKey);
  };
}

/** Serves a cache hit (true), or marks the miss (false). */
async function answerFromCache(ctx: GatewayContext, res: ServerResponse, rec: RequestRecord, valid: ValidRequest, principal: Principal, admission: Admission, route: ModelRoute, spec: EndpointSpec, cacheKey: string): Promise<boolean> {
  const hit = await ctx.cache.get(cacheKey);
  if (hit === null) {
    res.setHeader('x-gateway-cache', 'miss');
    return false;
  }
  res.setHeader('x-gateway-cache', 'hit');
  res.setHeader('x-gateway-provider', 'cache');
  res.setHeader('x-gateway-attempts', '0');
  rec.provider = 'cache';
  const parsed = JSON.parse(hit) as Record<string, unknown>;
  const { usage, estimated } = resolveUsage(valid, spec.usage(parsed), spec.outputText(parsed));
  noteUsage(rec, usage, estimated, parsed.model);
  account(ctx, principal, admission.reservation, route, undefined, usage, estimated, true);
  sendJson(res, 200, hit);
  return true;
}

/** A non-streaming answer: the requested model name in it, accounted, its stored response recorded, sent, cached. */
async function relayJson(ctx: GatewayContext, res: ServerResponse, rec: RequestRecord, valid: ValidRequest, principal: Principal, admission: Admission, route: ModelRoute, result: Success, endpoint: Endpoint, cacheKey: string | null): Promise<void> {
  const spec = ENDPOINTS[endpoint];
  const { parsed } = result.json!;
  const rewrite = modelRewriter(ctx.config, route.model, result.candidate);
  const raw = rewrite ? rewrite(result.json!.raw.toString('utf8')) : result.json!.raw;
  const { usage, estimated } = resolveUsage(valid, spec.usage(parsed), spec.outputText(parsed));
  noteUsage(rec, usage, estimated, parsed.model);
  rec.costUsd = account(ctx, principal, admission.reservation, route, result.candidate, usage, estimated, false);
  if (endpoint === 'responses') await recordStoredResponse(ctx, principal, result.candidate, valid, parsed.id, itemIds(parsed));
  sendJson(res, 200, raw);
  if (cacheKey) void ctx.cache.set(cacheKey, typeof raw === 'string' ? raw : raw.toString('utf8')).catch(() => undefined);
}

/**
 * One inference endpoint on a plain node:http request whose bookkeeping has started:
 * authenticate (an unauthenticated client never costs a body read), read the JSON body,
 * handle, and answer any error in the OpenAI shape.
 */
export function inferenceRoute(ctx: GatewayContext, endpoint: Endpoint): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const handle = inferenceHandler(ctx, endpoint);
  const limit = ctx.config.server.body_limit_bytes;
  return async (req, res) => {
    const rec = recordOf(res);
    // Tagged first, so requests refused before the handler (auth, body) are counted under their endpoint too.
    rec.endpoint = endpoint;
    try {
      rec.principal = ctx.tenancy.authenticate(req.headers.authorization);
      await handle(req, res, await readJsonBody(req, limit));
    } catch (err) {
      sendError(ctx.logger, res, err);
    }
  };
}
