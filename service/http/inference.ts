/**
 * The handler for the endpoints the gateway inspects (chat, completions, embeddings).
 * It only sequences named steps:
 *   authenticate -> validate -> resolve model -> admit (limits, budget) -> cache lookup
 *   -> routing plan -> execute (retry, failover, breaker) -> relay -> account -> cache store
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { priceRequest } from '../cost/cost';
import { estimateCompletionTokens, estimatePromptTokens } from '../cost/tokens';
import type { Candidate, Endpoint, ModelRoute } from '../routing/catalog';
import { planRoute } from '../routing/strategies';
import type { Admission, Principal, TokenReservation, Usage } from '../tenancy/contracts';
import type { Success } from '../upstream/executor';
import { relaySse } from '../upstream/sse-relay';
import { readJsonBody } from './body';
import type { GatewayContext } from './context';
import { badRequest, modelNotFound } from './errors';
import { recordOf, RequestRecord } from './request-context';
import { sendError, sendJson } from './respond';
import { validateRequest, ValidRequest } from './validate';

/** Output tokens assumed by cost-optimal routing when the request sets no max_tokens. */
const DEFAULT_EXPECTED_OUTPUT_TOKENS = 256;

const PATH_OF: Record<Endpoint, string> = { chat: '/v1/chat/completions', completion: '/v1/completions', embedding: '/v1/embeddings' };

function resolveRoute(ctx: GatewayContext, endpoint: Endpoint, req: ValidRequest): ModelRoute {
  const route = ctx.catalog.resolveFor(req.model, endpoint);
  if (!route) throw modelNotFound(req.model);
  if (!route.candidates.length) throw badRequest(`The model "${req.model}" does not support ${PATH_OF[endpoint]}.`, 'model_not_supported', 'model');
  return route;
}

/** Expected token mix of a request: about 4 body bytes a token in, max_tokens (or a default) out. */
function expectedTokensOf(req: ValidRequest, endpoint: Endpoint, bodyBytes: number): { input: number; output: number } {
  return { input: Math.ceil(bodyBytes / 4), output: endpoint === 'embedding' ? 0 : (req.maxTokens ?? DEFAULT_EXPECTED_OUTPUT_TOKENS) };
}

function makePlan(ctx: GatewayContext, route: ModelRoute, req: ValidRequest, expectedTokens: { input: number; output: number }): Candidate[] {
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

/** The body sent to one candidate: its upstream model name, and a request for usage on streams. */
function upstreamBodies(req: ValidRequest, endpoint: Endpoint): (c: Candidate) => string {
  const memo = new Map<string, string>();
  return (c) => {
    let s = memo.get(c.upstreamModel);
    if (s === undefined) {
      const body: Record<string, unknown> = { ...req.body, model: c.upstreamModel };
      if (req.stream && endpoint !== 'embedding') body.stream_options = { ...(req.body.stream_options as object), include_usage: true };
      s = JSON.stringify(body);
      memo.set(c.upstreamModel, s);
    }
    return s;
  };
}

function usageOf(parsed: Record<string, unknown>): Usage | undefined {
  const u = parsed.usage as { prompt_tokens?: unknown; completion_tokens?: unknown } | undefined;
  if (!u || typeof u.prompt_tokens !== 'number') return undefined;
  return { prompt_tokens: u.prompt_tokens, completion_tokens: typeof u.completion_tokens === 'number' ? u.completion_tokens : 0 };
}

/** What the request record keeps of the usage and the answering model, for the trace. */
function noteUsage(rec: RequestRecord, usage: Usage, estimated: boolean, model: unknown): void {
  rec.usage = { usage, estimated };
  rec.responseModel = typeof model === 'string' ? model : undefined;
}

function outputTextOf(parsed: Record<string, unknown>): string {
  const choices = Array.isArray(parsed.choices) ? (parsed.choices as Array<{ message?: { content?: unknown }; text?: unknown }>) : [];
  return choices.map((c) => (typeof c?.message?.content === 'string' ? c.message.content : typeof c?.text === 'string' ? c.text : '')).join('');
}

/** Usage the provider reported, or an estimate from the request and the produced text. */
function resolveUsage(req: ValidRequest, reported: Usage | undefined, outputText: string): { usage: Usage; estimated: boolean } {
  if (reported) return { usage: reported, estimated: false };
  return { usage: { prompt_tokens: estimatePromptTokens(req.body), completion_tokens: estimateCompletionTokens(outputText) }, estimated: true };
}

function account(ctx: GatewayContext, principal: Principal, reservation: TokenReservation | undefined, route: ModelRoute, c: Candidate | undefined, usage: Usage, estimated: boolean, cached: boolean): number {
  const prices = c && !cached ? { input_per_million: c.inputPerMillion, output_per_million: c.outputPerMillion } : undefined;
  const { costUsd, listCostUsd } = priceRequest(usage, prices, route.listPrice);
  ctx.tenancy.settle({ principal, provider: c?.provider.name ?? 'cache', model: route.model, usage, estimated, costUsd, listCostUsd, cached, at: ctx.now(), reservation });
  return costUsd;
}

function setOutcomeHeaders(res: ServerResponse, success: Pick<Success, 'candidate' | 'attempts'>): void {
  res.setHeader('x-gateway-provider', success.candidate.provider.name);
  res.setHeader('x-gateway-attempts', String(success.attempts));
}

async function relayStream(ctx: GatewayContext, res: ServerResponse, rec: RequestRecord, valid: ValidRequest, principal: Principal, admission: Admission, route: ModelRoute, success: Success) {
  const c = success.candidate;
  res.statusCode = 200;
  res.setHeader('content-type', 'text/event-stream; charset=utf-8');
  res.setHeader('cache-control', 'no-cache, no-transform');
  res.setHeader('x-accel-buffering', 'no');
  res.flushHeaders();
  ctx.metrics.streamTtfb.observe({ provider: c.provider.name, model: route.model }, (ctx.now() - rec.startedAt) / 1000);
  const result = await relaySse(success.stream!, res, !valid.clientWantsUsage);
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
  return async (req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> => {
    const rec = recordOf(res);
    rec.endpoint = endpoint;
    const principal = rec.principal!; // authenticated before the body was read
    const valid = validateRequest(endpoint, body);
    const route = resolveRoute(ctx, endpoint, valid);
    rec.model = route.model;
    rec.strategy = route.strategy;
    rec.stream = valid.stream;

    const expectedTokens = expectedTokensOf(valid, endpoint, Number(req.headers['content-length']) || JSON.stringify(valid.body).length);
    const admission = await ctx.tenancy.admit(principal, route.model, expectedTokens.input + expectedTokens.output);
    for (const k in admission.headers) res.setHeader(k, admission.headers[k]);

    const cacheKey = valid.stream ? null : ctx.cache.keyFor(principal, route.model, valid.body, req.headers);
    if (cacheKey) {
      const hit = await ctx.cache.get(cacheKey);
      if (hit !== null) {
        res.setHeader('x-gateway-cache', 'hit');
        res.setHeader('x-gateway-provider', 'cache');
        res.setHeader('x-gateway-attempts', '0');
        rec.provider = 'cache';
        const parsed = JSON.parse(hit) as Record<string, unknown>;
        const { usage, estimated } = resolveUsage(valid, usageOf(parsed), outputTextOf(parsed));
        noteUsage(rec, usage, estimated, parsed.model);
        account(ctx, principal, admission.reservation, route, undefined, usage, estimated, true);
        sendJson(res, 200, hit);
        return;
      }
      res.setHeader('x-gateway-cache', 'miss');
    }

    const clientAbort = new AbortController();
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
        bodyFor: upstreamBodies(valid, endpoint),
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

    if (result.stream) return relayStream(ctx, res, rec, valid, principal, admission, route, result);

    const { raw, parsed } = result.json!;
    const { usage, estimated } = resolveUsage(valid, usageOf(parsed), outputTextOf(parsed));
    noteUsage(rec, usage, estimated, parsed.model);
    rec.costUsd = account(ctx, principal, admission.reservation, route, result.candidate, usage, estimated, false);
    sendJson(res, 200, raw);
    if (cacheKey) void ctx.cache.set(cacheKey, raw.toString('utf8')).catch(() => undefined);
  };
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
