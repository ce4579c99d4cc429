/**
 * POST /v1/messages for Anthropic-shaped clients (the key as x-api-key or a Bearer token),
 * through the same catalog, strategies, limits, budgets, failover and spend as chat:
 * an `anthropic` provider gets the body as it is (its model name mapped) and answers
 * natively; any other provider gets it as an OpenAI chat request, and its answer and
 * stream come back in Anthropic's shape and events.
 */
import { Cancel } from '../upstream/cancel';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { chatUsage, Usage } from '../core/endpoints';
import { ChatToMessagesStream, chatToMessage, MessagesStreamObserver } from '../messages/from-chat';
import { messagesToChat } from '../messages/to-chat';
import { anthropicUsage } from '../providers/anthropic-response';
import { adapterFor } from '../providers/registry';
import type { Candidate, ModelRoute } from '../routing/catalog';
import type { Admission, Principal } from '../tenancy/contracts';
import { relayEvents } from '../upstream/event-relay';
import type { Success } from '../upstream/executor';
import { readJsonBody } from './body';
import type { GatewayContext } from './context';
import { badRequest } from '../core/errors';
import { account, expectedTokensOf, makePlan, noteUsage, resolveRoute, resolveUsage, setOutcomeHeaders } from './inference';
import { modelRewriter } from './model-name';
import { recordOf, RequestRecord } from './request-context';
import { sendError, sendJson } from './respond';
import { validateRequest, ValidRequest } from './validate';

/** The provider type that speaks this wire format natively. */
const NATIVE = 'anthropic';

/** x-api-key (Anthropic's SDKs) or the Authorization header, as the gateway's authenticator reads it. */
function authorizationOf(req: IncomingMessage): string | undefined {
  const key = req.headers['x-api-key'];
  return typeof key === 'string' && key ? `Bearer ${key}` : req.headers.authorization;
}

/** The body each candidate gets: native, or as an OpenAI chat request (translated on for other wire formats). */
function messagesBodies(valid: ValidRequest): (c: Candidate) => string {
  let chat: Record<string, unknown> | undefined;
  return (c) => {
    if (c.provider.type === NATIVE) return JSON.stringify({ ...valid.body, model: c.upstreamModel });
    chat ??= messagesToChat(valid.body);
    const translation = adapterFor(c.provider.type).translation;
    if (translation) return translation.requestBody('chat', chat, c.upstreamModel, c.provider, valid.stream);
    return JSON.stringify({ ...chat, model: c.upstreamModel });
  };
}

const errorEvent = (message: string) => `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'api_error', message } })}\n\n`;

interface Served {
  ctx: GatewayContext;
  res: ServerResponse;
  rec: RequestRecord;
  valid: ValidRequest;
  principal: Principal;
  admission: Admission;
  route: ModelRoute;
  result: Success;
}

function settle(s: Served, reported: Usage | undefined, outputText: string, model: unknown): void {
  const { usage, estimated } = resolveUsage(s.valid, reported, outputText);
  noteUsage(s.rec, usage, estimated, model);
  s.rec.costUsd = account(s.ctx, s.principal, s.admission.reservation, s.route, s.result.candidate, usage, estimated, false, s.rec.requestId);
}

async function relayMessagesStream(s: Served): Promise<void> {
  const { ctx, res, route, result } = s;
  const c = result.candidate;
  res.statusCode = 200;
  res.setHeader('content-type', 'text/event-stream; charset=utf-8');
  res.setHeader('cache-control', 'no-cache, no-transform');
  res.flushHeaders();
  ctx.metrics.streamTtfb.observe({ provider: c.provider.name, model: route.model }, (ctx.now() - s.rec.startedAt) / 1000);
  const observer = c.provider.type === NATIVE ? new MessagesStreamObserver() : new ChatToMessagesStream();
  const out = await relayEvents(result.stream!, res, observer, errorEvent, modelRewriter(ctx.config, route.model, c));
  if (out.interrupted) {
    ctx.metrics.streamInterruptions.inc({ provider: c.provider.name, model: route.model });
    ctx.breakers.record(c.provider.name, route.model, false);
    s.rec.streamOutcome = 'interrupted';
  }
  if (out.clientGone) s.rec.streamOutcome = 'client_gone';
  settle(s, observer.usage, observer.outputText, observer.model);
}

function sendMessage(s: Served): void {
  const { parsed, raw } = s.result.json!;
  const native = s.result.candidate.provider.type === NATIVE;
  const rewrite = modelRewriter(s.ctx.config, s.route.model, s.result.candidate);
  const message = native ? parsed : chatToMessage(parsed);
  const usage = native ? anthropicUsage(parsed.usage) : chatUsage(parsed.usage);
  const text = Array.isArray(message.content) ? (message.content as Array<{ text?: unknown }>).map((b) => (typeof b?.text === 'string' ? b.text : '')).join('') : '';
  settle(s, usage, text, message.model);
  const body = native ? raw.toString('utf8') : JSON.stringify(message);
  sendJson(s.res, 200, rewrite ? rewrite(body) : body);
}

async function handleMessages(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
  const rec = recordOf(res);
  const principal = rec.principal!;
  const valid = validateRequest('chat', body);
  if (valid.maxTokens === undefined) throw badRequest('Missing required parameter: "max_tokens".', 'missing_required_parameter', 'max_tokens');
  const route = resolveRoute(ctx, 'chat', valid);
  rec.model = route.model;
  rec.strategy = route.strategy;
  rec.stream = valid.stream;
  const expected = expectedTokensOf(valid, 'chat', Number(req.headers['content-length']) || JSON.stringify(valid.body).length);
  const admission = await ctx.tenancy.admit(principal, route.model, expected.input + expected.output);
  for (const k in admission.headers) res.setHeader(k, admission.headers[k]);
  const clientAbort = new Cancel();
  const onClose = () => {
    if (!res.writableFinished) clientAbort.abort();
  };
  res.on('close', onClose);
  const result = await ctx.executor
    .execute({ model: route.model, endpoint: 'chat', plan: makePlan(ctx, route, valid, expected), bodyFor: messagesBodies(valid), stream: valid.stream, requestId: rec.requestId, clientSignal: clientAbort.signal, deadline: rec.startedAt + ctx.config.routing.timeout_ms, trace: rec.trace, nativeType: NATIVE })
    .finally(() => res.off('close', onClose));
  res.setHeader('x-gateway-attempts', String(result.attempts));
  if (!result.ok) {
    ctx.tenancy.release(principal, admission.reservation);
    throw result.error;
  }
  setOutcomeHeaders(res, result);
  rec.provider = result.candidate.provider.name;
  rec.attempts = result.attempts;
  const served: Served = { ctx, res, rec, valid, principal, admission, route, result };
  if (result.stream) return relayMessagesStream(served);
  sendMessage(served);
}

/** The route: authenticate before reading the body, answer errors in the OpenAI shape (Anthropic's SDKs read its message). */
export function messagesRoute(ctx: GatewayContext): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const limit = ctx.config.server.body_limit_bytes;
  return async (req, res) => {
    const rec = recordOf(res);
    rec.endpoint = 'messages';
    try {
      rec.principal = ctx.tenancy.authenticate(authorizationOf(req));
      await handleMessages(ctx, req, res, await readJsonBody(req, limit));
    } catch (err) {
      sendError(ctx.logger, res, err);
    }
  };
}
