/**
 * The one request pipeline every inbound API runs through (chat, completions, embeddings,
 * responses, Anthropic messages): each step a named function, the handler only sequences them:
 *   authenticate -> read and validate (the inbound spec) -> resolve the model -> admit (limits,
 *   budgets) -> ownership of referenced objects -> cache -> plan -> attempts (the executor:
 *   retry, failover, breaker, and every attempt's outcome) -> relay (the spec) -> settle.
 * An admitted request holds its maximum cost (maxCostOf) in the budgets until settle() or
 * release() takes it off the admission, whichever way the request ends.
 * Nothing here records provider stats or breaker state: the executor owns attempt outcomes,
 * including how a stream ended; settle() is the one place spend is recorded.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Endpoint, ENDPOINTS, responseOutputText, responsesUsage } from '../core/endpoints';
import { badRequest, GatewayError, modelNotFound } from '../core/errors';
import { MaybePromise, then } from '../core/maybe-async';
import { OBJECT_COLLECTIONS, referencedIds } from '../core/passthrough-paths';
import { firstResponseId } from '../core/sse';
import { maxCostUsd, priceRequest } from '../cost/cost';
import { estimateCompletionTokens, estimatePromptTokens } from '../cost/tokens';
import type { InboundSpec, StreamResult } from '../inbound/types';
import type { ValidRequest } from '../inbound/validate';
import type { Candidate, ModelRoute } from '../routing/catalog';
import { planRoute } from '../routing/strategies';
import type { Admission, Principal, Usage } from '../tenancy/contracts';
import { assertOwned, STORED_RESPONSE_TTL_SECONDS } from '../tenancy/objects';
import { continuable, continuationMode } from '../inbound/continuation';
import { Cancel } from '../upstream/cancel';
import type { ExecuteResult, Success } from '../upstream/executor';
import { readJsonBody } from './body';
import type { GatewayContext } from './context';
import { modelRewriter } from './model-name';
import { recordOf, RequestRecord } from './request-context';
import { sendError, sendJson } from './respond';

/** Output tokens assumed by cost-optimal routing and token reservations when the request sets no max_tokens. */
const DEFAULT_EXPECTED_OUTPUT_TOKENS = 256;

/** One request on its way through the pipeline. */
interface Served {
  ctx: GatewayContext;
  spec: InboundSpec;
  res: ServerResponse;
  rec: RequestRecord;
  valid: ValidRequest;
  principal: Principal;
  route: ModelRoute;
  admission: Admission;
  /** The expected token mix (plan and reservation). */
  expected: { input: number; output: number };
  /** The candidates in the order the attempts went through them (continuations take the rest). */
  plan: Candidate[];
}

export function resolveRoute(ctx: GatewayContext, endpoint: Endpoint, req: ValidRequest): ModelRoute {
  const route = ctx.catalog.resolveFor(req.model, endpoint);
  if (!route) throw modelNotFound(req.model);
  if (route.unserved === 'endpoint') {
    throw new GatewayError(404, 'not_found_error', 'endpoint_not_supported', `No provider of the model "${req.model}" serves ${ENDPOINTS[endpoint].path} through this gateway.`, {}, 'model');
  }
  if (!route.candidates.length) throw badRequest(`The model "${req.model}" does not support ${ENDPOINTS[endpoint].path}.`, 'model_not_supported', 'model');
  return route;
}

/** A request continuing a stored response (previous_response_id) must be the team's own and goes to the provider holding it. */
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

/** Bytes of the decoded body: Content-Length when the body was sent as it is, else the parsed body's size (a gzip body inflates). */
function decodedBodyBytes(req: IncomingMessage, valid: ValidRequest): number {
  const encoding = req.headers['content-encoding'];
  const declared = Number(req.headers['content-length']);
  if ((encoding === undefined || encoding.toLowerCase() === 'identity') && declared > 0) return declared;
  return Buffer.byteLength(JSON.stringify(valid.body));
}

/** Expected token mix of a request: about 4 body bytes a token in, max_tokens (or a default) out. */
export function expectedTokensOf(req: ValidRequest, endpoint: Endpoint, bodyBytes: number): { input: number; output: number } {
  return { input: Math.ceil(bodyBytes / 4), output: endpoint === 'embedding' ? 0 : (req.maxTokens ?? DEFAULT_EXPECTED_OUTPUT_TOKENS) };
}

/** How many completions a request has generated (and billed): the larger of `n` and `best_of` (legacy completions), at least 1. */
export function choicesOf(req: ValidRequest): number {
  const count = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v > 1 ? v : 1);
  return Math.max(count(req.body.n), count(req.body.best_of));
}

/** The most the request can cost at any of the route's candidates, held against the budgets until it is settled (embeddings produce no output). */
export function maxCostOf(ctx: GatewayContext, route: ModelRoute, req: ValidRequest, endpoint: Endpoint, inputTokens: number): number {
  return maxCostUsd(route.candidates, inputTokens, endpoint === 'embedding' ? 0 : req.maxTokens, ctx.config.routing.reserve_output_tokens, choicesOf(req));
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
 * Usage to bill: the provider's final count, or the best evidence when it never came (a cut or
 * abandoned stream, a provider that reports none): what the provider counted so far, never
 * less than the text the client received, marked estimated.
 */
export function billableUsage(req: ValidRequest, reported: Usage | undefined, final: boolean, outputText: string | (() => string)): { usage: Usage; estimated: boolean } {
  if (reported && final) return { usage: reported, estimated: false };
  const usage: Usage = {
    prompt_tokens: reported?.prompt_tokens ?? estimatePromptTokens(req.body),
    completion_tokens: Math.max(reported?.completion_tokens ?? 0, estimateCompletionTokens(typeof outputText === 'string' ? outputText : outputText())),
  };
  if (reported?.cached_tokens) usage.cached_tokens = reported.cached_tokens;
  return { usage, estimated: true };
}

/** The admission's reservation (tokens, budget hold), taken off it so that it is settled or released once. */
function takeReservation(s: Served): Admission['reservation'] {
  const reservation = s.admission.reservation;
  s.admission.reservation = undefined;
  return reservation;
}

/** The one place spend is recorded: usage priced at the serving candidate (the cache costs nothing), the reservation settled. */
function settle(s: Served, c: Candidate | undefined, billed: { usage: Usage; estimated: boolean }, model: unknown, cached = false): void {
  const { usage, estimated } = billed;
  const prices = c && !cached ? { input_per_million: c.inputPerMillion, output_per_million: c.outputPerMillion, cached_input_per_million: c.cachedInputPerMillion } : undefined;
  const { costUsd, listCostUsd } = priceRequest(usage, prices, s.route.listPrice);
  // The admission's reservation is settled by the first settlement (a continued stream settles each attempt).
  const reservation = takeReservation(s);
  s.ctx.tenancy.settle({
    principal: s.principal,
    requestId: s.rec.requestId,
    provider: c?.provider.name ?? 'cache',
    model: s.route.model,
    usage,
    estimated,
    unpriced: !cached && !!c?.unpriced,
    costUsd,
    listCostUsd,
    cached,
    at: s.ctx.now(),
    reservation,
  });
  s.rec.usage = { usage, estimated };
  s.rec.responseModel = typeof model === 'string' ? model : undefined;
  if (!cached) s.rec.costUsd = (s.rec.costUsd ?? 0) + costUsd;
}

/** Records a stored response's id, and its output items' (item_reference may name them), against the team and provider (not when the client sent store: false). */
function recordStoredResponse(s: Served, c: Candidate, id: unknown, items: readonly string[] = []): Promise<void> | undefined {
  if (!s.spec.storesResponses || typeof id !== 'string' || s.valid.body.store === false) return undefined;
  return s.ctx.objects.recordMany([id, ...items], { team: s.principal.team, provider: c.provider.name }, STORED_RESPONSE_TTL_SECONDS);
}

/** Serves a cache hit (true), or marks the miss (false). */
async function answerFromCache(s: Served, cacheKey: string): Promise<boolean> {
  const hit = await s.ctx.cache.get(cacheKey);
  if (hit === null) {
    s.res.setHeader('x-gateway-cache', 'miss');
    return false;
  }
  s.res.setHeader('x-gateway-cache', 'hit');
  s.res.setHeader('x-gateway-provider', 'cache');
  s.res.setHeader('x-gateway-attempts', '0');
  s.rec.provider = 'cache';
  const parsed = JSON.parse(hit) as Record<string, unknown>;
  const spec = ENDPOINTS[s.spec.endpoint];
  settle(
    s,
    undefined,
    billableUsage(s.valid, spec.usage(parsed), true, () => spec.outputText(parsed)),
    parsed.model,
    true,
  );
  sendJson(s.res, 200, hit);
  return true;
}

/** Runs the executor over `plan` with `bodyFor`, cancelled when the client leaves, the deadline `timeout_ms` after `startedAt`. */
async function execute(s: Served, plan: Candidate[], bodyFor: (c: Candidate) => Buffer, startedAt: number): Promise<ExecuteResult> {
  const { ctx, res, rec, spec, valid, route } = s;
  const clientAbort = new Cancel();
  const onClose = () => {
    if (!res.writableFinished) clientAbort.abort();
  };
  res.on('close', onClose);
  try {
    return await ctx.executor.execute({
      model: route.model,
      endpoint: spec.endpoint,
      label: spec.name,
      plan,
      bodyFor,
      stream: valid.stream,
      requestId: rec.requestId,
      clientSignal: clientAbort.signal,
      startedAt,
      deadline: startedAt + ctx.config.routing.timeout_ms,
      trace: rec.trace,
      nativeType: spec.nativeType,
    });
  } finally {
    res.off('close', onClose);
  }
}

/** The attempts, under the request deadline. */
function attempt(s: Served): Promise<ExecuteResult> {
  s.plan = makePlan(s.ctx, s.route, s.valid, s.expected);
  return execute(s, s.plan, s.spec.bodyFor(s.valid), s.rec.startedAt);
}

const STREAM_OUTCOME: Record<StreamResult['end'], string | undefined> = { completed: undefined, cut: 'interrupted', invalid: 'invalid_upstream_stream', client_gone: 'client_gone' };

/** Candidates that may continue a broken stream: not tried yet, and whose model continues at all. */
function continuers(s: Served, tried: ReadonlySet<string>): Candidate[] {
  if (s.ctx.config.routing.continuation === 'off' || !s.spec.continuation || !continuable(s.valid)) return [];
  return s.plan.filter((c) => !tried.has(c.provider.name) && continuationMode(c) !== 'none');
}

/** Bodies that continue `partial`, each candidate in its mode (or all in `force`). */
function continuationBodies(s: Served, partial: string, force?: 'instruction'): (c: Candidate) => Buffer {
  const byMode = new Map<string, (c: Candidate) => Buffer>();
  return (c) => {
    const mode = force ?? (continuationMode(c) === 'prefill' ? 'prefill' : 'instruction');
    let bodyFor = byMode.get(mode);
    if (!bodyFor) byMode.set(mode, (bodyFor = s.spec.bodyFor(s.spec.continuation!.request(s.valid, partial, mode))));
    return bodyFor(c);
  };
}

/** The next provider's stream that continues `prior`; a fallback that rejects a prefill (400) is asked again with an instruction. */
async function continueOn(s: Served, prior: StreamResult, plan: Candidate[]): Promise<Success | undefined> {
  const now = s.ctx.now();
  let next = await execute(s, plan, continuationBodies(s, prior.sentText), now);
  if (!next.ok && next.error.status === 400 && plan.some((c) => continuationMode(c) === 'prefill')) next = await execute(s, plan, continuationBodies(s, prior.sentText, 'instruction'), now);
  return next.ok && next.stream ? next : undefined;
}

/** Says on the stream (an SSE comment, invisible to SDKs), the log line, the metric and the trace that `to` continues `from`'s stream. */
function markContinuation(s: Served, from: Candidate, to: Candidate): void {
  s.res.write(`: gateway: stream continued by provider ${to.provider.name} after ${from.provider.name} broke off\n\n`);
  s.rec.continuedBy = s.rec.continuedBy ? `${s.rec.continuedBy},${to.provider.name}` : to.provider.name;
  s.ctx.metrics.streamContinuations.inc({ provider: to.provider.name, outcome: 'continued' });
  s.rec.trace?.event('aigw.stream.continued', { 'aigw.from_provider': from.provider.name, 'aigw.to_provider': to.provider.name });
  s.ctx.logger.info({ request_id: s.rec.requestId, from_provider: from.provider.name, to_provider: to.provider.name }, 'stream continued on another provider');
}

async function relayStream(s: Served, result: Success): Promise<void> {
  const { ctx, res, rec, spec } = s;
  res.statusCode = 200;
  res.setHeader('content-type', 'text/event-stream; charset=utf-8');
  res.setHeader('cache-control', 'no-cache, no-transform');
  res.setHeader('x-accel-buffering', 'no');
  // No separate flush: the headers leave with the first event, which is already in hand.
  // A stored response is recorded before its first event reaches the client, so a follow-up finds it on any replica.
  const createdId = spec.storesResponses ? firstResponseId(result.stream!.first) : undefined;
  if (createdId) await recordStoredResponse(s, result.candidate, createdId);
  const tried = new Set<string>();
  let prior: StreamResult | undefined;
  for (let current = result; ;) {
    const c = current.candidate;
    tried.add(c.provider.name);
    const plan = continuers(s, tried);
    const args = { handle: current.stream!, res, candidate: c, valid: s.valid, rewrite: modelRewriter(ctx.config, c) };
    const out = prior ? await spec.continuation!.relay(args, prior, plan.length > 0) : await spec.relayStream(args, plan.length > 0);
    current.stream!.finish(out.end, out.dropped);
    if (!prior) await recordStoredResponse(s, c, createdId ?? out.responseId, out.itemIds);
    rec.streamOutcome = STREAM_OUTCOME[out.end];
    // Each attempt is billed for what it produced, a cut one too.
    settle(s, c, billableUsage(s.valid, out.usage, out.usageFinal, out.outputText), out.model);
    if (!plan.length || (out.end !== 'cut' && out.end !== 'invalid')) return;
    const next = out.toolCalls ? undefined : await continueOn(s, out, plan);
    if (!next) {
      ctx.metrics.streamContinuations.inc({ provider: c.provider.name, outcome: out.toolCalls ? 'ineligible' : 'failed' });
      return spec.continuation!.end(res, out);
    }
    markContinuation(s, c, next.candidate);
    [current, prior] = [next, out];
  }
}

/** A background response that has not run yet: settled when the provider says it finished (http/background.ts). */
function isPendingBackground(s: Served, parsed: Record<string, unknown>): boolean {
  return s.spec.storesResponses && s.valid.body.background === true && typeof parsed.id === 'string' && (parsed.status === 'queued' || parsed.status === 'in_progress');
}

/** The response's reservation stays held (its maximum cost in the budget) until the watch settles it. */
function watchBackground(s: Served, c: Candidate, id: string): void {
  const held = takeReservation(s);
  const settleHeld = (billed: { usage: Usage; estimated: boolean }, model: unknown) => {
    s.admission.reservation = held;
    settle(s, c, billed, model);
  };
  s.ctx.background.watch({
    id,
    candidate: c,
    requestId: s.rec.requestId,
    settle: (final) => settleHeld(billableUsage(s.valid, responsesUsage(final.usage), true, responseOutputText(final)), final.model),
    settleEstimate: () => settleHeld({ usage: { prompt_tokens: s.expected.input, completion_tokens: s.expected.output }, estimated: true }, undefined),
  });
}

/** A non-streaming answer: in the client's shape, settled (a background response when it finishes), its stored response recorded, sent, cached. */
async function relayJson(s: Served, result: Success, cacheKey: string | null): Promise<void> {
  const c = result.candidate;
  const answer = s.spec.answer(result.json!, c, s.valid, modelRewriter(s.ctx.config, c));
  if (isPendingBackground(s, result.json!.parsed)) watchBackground(s, c, String(answer.id));
  else settle(s, c, billableUsage(s.valid, answer.usage, true, answer.outputText), answer.model);
  const stored = recordStoredResponse(s, c, answer.id, answer.itemIds);
  if (stored) await stored;
  sendJson(s.res, 200, answer.body);
  if (cacheKey) void s.ctx.cache.set(cacheKey, typeof answer.body === 'string' ? answer.body : answer.body.toString('utf8')).catch(() => undefined);
}

/** Admission, then (with a reservation to give back on refusal) the stored-object checks that may need a lookup. */
function admit(ctx: GatewayContext, spec: InboundSpec, req: IncomingMessage, res: ServerResponse, valid: ValidRequest, checkReferences: boolean): MaybePromise<Served> {
  const rec = recordOf(res);
  const principal = rec.principal!;
  if (spec.storesResponses && valid.body.background === true && ctx.config.routing.background_responses === 'refuse') {
    throw badRequest('Background responses are turned off on this gateway (routing.background_responses: refuse).', 'background_not_allowed', 'background');
  }
  const route = resolveRoute(ctx, spec.endpoint, valid);
  rec.model = route.model;
  rec.strategy = route.strategy;
  rec.stream = valid.stream;
  const expected = expectedTokensOf(valid, spec.endpoint, decodedBodyBytes(req, valid));
  const admitted = ctx.tenancy.admit(principal, route.model, expected.input + expected.output, maxCostOf(ctx, route, valid, spec.endpoint, expected.input));
  return then(admitted, (admission) => {
    const s: Served = { ctx, spec, res, rec, valid, principal, route, admission, expected, plan: route.candidates };
    // Chat, completions and embeddings without stored objects to check: served at once (no lookup to wait for).
    return spec.storesResponses || checkReferences ? checkStoredObjects(s, checkReferences) : withAdmissionHeaders(s);
  });
}

/** The admission's headers on the response: the request is served. */
function withAdmissionHeaders(s: Served): Served {
  for (const k in s.admission.headers) s.res.setHeader(k, s.admission.headers[k]);
  return s;
}

/** The stored objects a request names must be the team's own (with a reservation to give back on refusal). */
async function checkStoredObjects(s: Served, checkReferences: boolean): Promise<Served> {
  const { ctx, principal, valid } = s;
  try {
    if (s.spec.storesResponses) s.route = await pinToPreviousResponse(ctx, principal, s.route, valid);
    if (checkReferences) await assertOwned(ctx.objects, principal.team, referencedIds(valid.body));
  } catch (err) {
    ctx.tenancy.release(principal, s.admission.reservation);
    throw err;
  }
  s.plan = s.route.candidates;
  return withAdmissionHeaders(s);
}

/** Serves one authenticated request whose JSON body is read; a reservation neither settled nor released on the way (an unexpected error) is given back. */
async function serve(ctx: GatewayContext, spec: InboundSpec, req: IncomingMessage, res: ServerResponse, body: unknown, checkReferences: boolean): Promise<void> {
  const admitted = admit(ctx, spec, req, res, spec.validate(body), checkReferences);
  const s = admitted instanceof Promise ? await admitted : admitted;
  try {
    await serveAdmitted(s, req);
  } finally {
    // Whatever path ended the request (a failed upstream, an unexpected error) without settling it: nothing billed.
    const unsettled = takeReservation(s);
    if (unsettled) ctx.tenancy.release(s.principal, unsettled);
  }
}

/** An admitted request: the cache, the attempts, the relay (each path settles it, or throws and serve() gives its reservation back). */
async function serveAdmitted(s: Served, req: IncomingMessage): Promise<void> {
  const { ctx, spec, res, rec, valid } = s;
  const cacheKey = spec.cacheable && !valid.stream && valid.body.background !== true ? ctx.cache.keyFor(s.principal, s.route.model, valid.body, req.headers) : null;
  if (cacheKey && (await answerFromCache(s, cacheKey))) return;
  const result = await attempt(s);
  res.setHeader('x-gateway-attempts', String(result.attempts));
  if (!result.ok) throw result.error; // released by serve()
  res.setHeader('x-gateway-provider', result.candidate.provider.name);
  rec.provider = result.candidate.provider.name;
  rec.attempts = result.attempts;
  if (result.candidate.upstreamModel !== s.route.model) rec.upstreamModel = result.candidate.upstreamModel;
  return result.stream ? relayStream(s, result) : relayJson(s, result, cacheKey);
}

/**
 * The route of one inbound API: authenticate before reading the body (an unauthenticated
 * client never costs a read), read the JSON body, serve, and answer any error in the API's shape.
 */
export function pipelineRoute(ctx: GatewayContext, spec: InboundSpec): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const limit = ctx.config.server.body_limit_bytes;
  // Ids a request names (previous_response_id, file_id, vector_store_ids...) must be the team's own. Chat,
  // completions and embeddings pay for the scan only when the pass-through lets teams create such objects.
  const checkReferences = spec.storesResponses || ctx.config.passthrough.some((e) => e.path !== '/v1/responses' && OBJECT_COLLECTIONS.includes(e.path));
  return async (req, res) => {
    const rec = recordOf(res);
    // Tagged first, so requests refused before the body is read (auth, body) are counted under their endpoint too.
    rec.endpoint = spec.name;
    try {
      rec.principal = ctx.tenancy.authenticate(spec.authorization(req.headers));
      await serve(ctx, spec, req, res, await readJsonBody(req, limit), checkReferences);
    } catch (err) {
      sendError(ctx.logger, res, err, spec.errors);
    }
  };
}
