/**
 * Every /v1 path that is not a routed endpoint. Closed by default: only paths in the
 * `passthrough` allowlist (and the stored responses of POST /v1/responses) reach a provider;
 * anything else is 404 `unknown_url` and nothing is sent upstream. What does pass is handled
 * like inference: authenticated, admitted (key and team limits, budgets), counted in
 * aigw_requests_total under its path, and settled in the spend report (priced from the
 * answer's usage, per image or per request as configured, else recorded as unpriced).
 *
 * Objects are private to the team that created them: an id a POST to a collection returns
 * (a file, a batch, a vector store...) is recorded against the team and its provider; any
 * path or request field naming an id the team does not own gets 404, and listing a
 * collection is refused (it would show other teams' objects).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import { chatUsage, responsesUsage, Usage } from '../core/endpoints';
import { acceptsMultipart, ID_REFERENCE_FIELDS, objectPath, ObjectPath, referencedIds } from '../core/passthrough-paths';
import { GatewayConfig, ProviderConfig, providerApiKey } from '../config/schema';
import { costUsd } from '../cost/cost';
import type { Principal } from '../tenancy/contracts';
import { itemIds, objectLifetimeSeconds, objectNotFound, STORED_RESPONSE_TTL_SECONDS } from '../tenancy/objects';
import type { UpstreamClient } from '../upstream/client';
import { classifyNetworkError } from '../upstream/client';
import { MAX_UPSTREAM_BODY_BYTES } from '../upstream/executor';
import { BodyTooLargeError, readCapped, readErrorBody } from '../upstream/read-body';
import { drained } from '../upstream/relay-loop';
import { readJsonBody } from './body';
import type { GatewayContext } from './context';
import { badRequest, forbidden, GatewayError, notFound, payloadTooLarge, rateLimited, upstreamTimeout, upstreamUnavailable } from '../core/errors';
import { publicNameRewriter } from './model-name';
import { recordOf } from './request-context';
import { sendJson } from './respond';
import { genericProviderError, redactJsonBody, redactText, secretForms } from '../core/redact';

type Entry = GatewayConfig['passthrough'][number];
type Method = Entry['methods'][number];

/** What the gateway will do with one pass-through request (pure decision). */
export type PassDecision = { kind: 'refuse'; error: GatewayError } | { kind: 'forward'; method: Method; label: string; entry?: Entry; object?: ObjectPath };

const unknownUrl = (method: string, path: string) => notFound(`Unknown endpoint: ${method} ${path.slice(0, 200)}`, 'unknown_url');

/** Stored responses: GET and DELETE a response, GET its input_items, POST cancel (background mode). */
function storedResponseRule(op: ObjectPath): Method[] | undefined {
  if (op.rest === '') return ['GET', 'DELETE'];
  if (op.rest === '/input_items') return ['GET'];
  if (op.rest === '/cancel') return ['POST'];
  return undefined;
}

/** Matches a path and method against the allowlist and the stored-response routes. */
export function decidePassthrough(method: string, path: string, entries: readonly Entry[]): PassDecision {
  const op = objectPath(path);
  if (op?.collection === '/v1/responses') {
    const methods = op.id ? storedResponseRule(op) : undefined;
    if (!methods || !methods.includes(method as Method)) return { kind: 'refuse', error: unknownUrl(method, path) };
    return { kind: 'forward', method: method as Method, label: 'responses_object', object: op };
  }
  const entry = entries.find((e) => e.path === path || (op && e.path === op.collection));
  if (!entry || !entry.methods.includes(method as Method)) return { kind: 'refuse', error: unknownUrl(method, path) };
  if (op && !op.id && method === 'GET') {
    return {
      kind: 'refuse',
      error: forbidden(`Listing ${op.collection} is not available through the gateway: it would show other teams' objects. Keep the ids your application creates.`, 'listing_not_allowed'),
    };
  }
  return { kind: 'forward', method: method as Method, label: entry.path, entry, object: op };
}

/**
 * Ownership of every object the request names, path id and body ids alike, read in one round
 * trip (after admission): 404 for an id the team does not own. Returns the provider to call:
 * the path object's holder, the entry's provider, or the first openai-type one.
 */
async function checkOwnership(ctx: GatewayContext, principal: Principal, d: Extract<PassDecision, { kind: 'forward' }>, bodyIds: readonly string[]): Promise<ProviderConfig> {
  const pathId = d.object?.id;
  const ids = pathId ? [pathId, ...bodyIds.filter((id) => id !== pathId)] : [...bodyIds];
  const owners = ids.length ? await ctx.objects.lookupMany(ids) : [];
  owners.forEach((owner, i) => {
    if (!owner || owner.team !== principal.team) throw objectNotFound(ids[i]);
  });
  if (pathId) {
    const p = ctx.config.providers.find((x) => x.name === owners[0]!.provider);
    if (!p) throw objectNotFound(pathId);
    return p;
  }
  const p = d.entry?.provider ? ctx.config.providers.find((x) => x.name === d.entry!.provider) : ctx.config.providers.find((x) => x.type === 'openai');
  if (!p) throw upstreamUnavailable('No provider is configured for this path.');
  return p;
}

/** A request body that counts its bytes and fails past the limit. */
function cappedStream(req: IncomingMessage, limit: number): Transform {
  let size = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      cb(size > limit ? payloadTooLarge(limit) : null, chunk);
    },
  });
  req.on('error', (err) => t.destroy(err));
  return req.pipe(t);
}

const isJson = (contentType: string | undefined) => !!contentType && /^application\/json\b/i.test(contentType.trim());
const isMultipart = (contentType: string | undefined) => !!contentType && /^multipart\/form-data\b/i.test(contentType.trim());

/** Part headers naming an id-bearing field in a multipart upload (`Content-Disposition: form-data; name="file_id"`). */
const ID_PART = new RegExp(`name="?(${ID_REFERENCE_FIELDS.join('|')})(\\[\\])?"?[;\\s]`, 'i');

/**
 * A multipart upload, streamed with a byte cap; a part naming an object by id (say `file_id`
 * on /v1/containers/{id}/files) cannot be checked in a stream, so it ends the request with a
 * 400: send such a request as JSON, where its ids are checked. Each chunk is scanned once,
 * with the tail of the previous one.
 */
function uploadStream(req: IncomingMessage, limit: number): Transform {
  let tail = '';
  const t = cappedStream(req, limit);
  const scan = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      const text = tail + chunk.toString('latin1');
      tail = text.slice(-64);
      cb(ID_PART.test(text) ? badRequest('A multipart upload may not name objects by id (file_id...): send the request as JSON so the ids can be checked.', 'invalid_multipart_field') : null, chunk);
    },
  });
  t.on('error', (err) => scan.destroy(err));
  scan.on('error', () => undefined); // the request to the provider fails with it (send() answers its cause)
  return t.pipe(scan);
}

/** What a pass-through request sends on: nothing, a checked JSON body (with the ids it names), or a multipart upload stream. */
interface PassBody {
  forward: string | Transform | undefined;
  ids: string[];
}

/**
 * The body to forward. Multipart uploads on upload paths stream through with a byte cap;
 * every other body is read and parsed as JSON whatever its Content-Type claims (text/plain,
 * form-encoded...: an OpenAI-compatible server may parse JSON regardless), so the ids it
 * names are always checked; a body that is not JSON is a 400.
 */
async function readPassBody(req: IncomingMessage, path: string, limit: number): Promise<PassBody> {
  if (req.method === 'GET' || req.method === 'DELETE') return { forward: undefined, ids: [] };
  const declared = Number(req.headers['content-length']);
  if (declared > limit) throw payloadTooLarge(limit);
  const type = req.headers['content-type'];
  if (isMultipart(type) && acceptsMultipart(path)) return { forward: uploadStream(req, limit), ids: [] };
  let body: unknown;
  try {
    body = await readJsonBody(req, limit, { anyContentType: true });
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'invalid_json') {
      throw badRequest(`Pass-through request bodies must be JSON${acceptsMultipart(path) ? ' (or a multipart/form-data upload)' : ''}, whatever the Content-Type says.`, 'invalid_json');
    }
    throw err;
  }
  if (body === undefined) return { forward: undefined, ids: [] };
  return { forward: JSON.stringify(body), ids: referencedIds(body) };
}

const FORWARDED_HEADERS = ['content-type', 'accept', 'openai-beta'] as const;

function forwardHeaders(req: IncomingMessage, body: string | Transform | undefined): Record<string, string> {
  const h: Record<string, string> = {};
  for (const name of FORWARDED_HEADERS) {
    const v = req.headers[name];
    if (typeof v === 'string') h[name] = v;
  }
  if (typeof body === 'string') {
    h['content-type'] = 'application/json'; // re-serialized: decoded and in UTF-8
  } else if (body) {
    // Streamed as received: its length and encoding go with it.
    const length = req.headers['content-length'];
    const encoding = req.headers['content-encoding'];
    if (length) h['content-length'] = length;
    if (typeof encoding === 'string') h['content-encoding'] = encoding;
  }
  return h;
}

/** Cost of one answer: from its usage at the entry's token prices, else per image, else per request, else unpriced. */
export function priceAnswer(entry: Entry | undefined, parsed: Record<string, unknown> | undefined): { usage: Usage; costUsd: number; unpriced: boolean } {
  const usage = (parsed && (chatUsage(parsed.usage) ?? responsesUsage(parsed.usage))) || { prompt_tokens: 0, completion_tokens: 0 };
  const price = entry?.price;
  const hasUsage = usage.prompt_tokens > 0 || usage.completion_tokens > 0;
  if (hasUsage && price && (price.input_per_million !== undefined || price.output_per_million !== undefined)) {
    return { usage, costUsd: costUsd(usage, { input_per_million: price.input_per_million ?? 0, output_per_million: price.output_per_million ?? 0 }), unpriced: false };
  }
  if (price?.per_image_usd !== undefined && Array.isArray(parsed?.data)) return { usage, costUsd: price.per_image_usd * (parsed.data as unknown[]).length, unpriced: false };
  if (price?.per_request_usd !== undefined) return { usage, costUsd: price.per_request_usd, unpriced: false };
  return { usage, costUsd: 0, unpriced: true };
}

export function passthroughRoute(ctx: GatewayContext, client: UpstreamClient) {
  // Stored responses carry the provider's model name: mapped names go back to public ones (built once per provider).
  const renamers = new Map(ctx.config.providers.map((p) => [p.name, publicNameRewriter(ctx.config, p.name)]));
  return async (req: IncomingMessage & { path: string }, res: ServerResponse, search: string): Promise<void> => {
    const rec = recordOf(res);
    const principal = rec.principal!;
    const path = `/v1${req.path}`;
    // Without keys nothing beyond the inference routes leaves (every caller is the same anonymous team).
    if (ctx.config.auth.mode === 'none') throw unknownUrl(req.method ?? 'GET', path);
    const d = decidePassthrough(req.method ?? 'GET', path, ctx.config.passthrough);
    if (d.kind === 'refuse') throw d.error;
    rec.endpoint = d.label;
    rec.model = d.label;
    // Read and parsed first (bad input is a 400 that costs nothing), then admitted (key, limits,
    // budget), and only then are the objects it names looked up: one round trip for all of them.
    const body = await readPassBody(req, path, d.entry?.body_limit_bytes ?? ctx.config.server.body_limit_bytes);
    const admission = await ctx.tenancy.admit(principal, d.label);
    for (const k in admission.headers) res.setHeader(k, admission.headers[k]);
    const provider = await checkOwnership(ctx, principal, d, body.ids);
    // The provider's own quota (providers[].rate_limit) covers what passes through to it too.
    if (!(await ctx.tenancy.admitProvider(provider.name))) throw rateLimited(`The provider "${provider.name}" is at its configured request quota; retry shortly.`, 1, {}, 'provider_quota_exceeded');
    rec.provider = provider.name;
    const upstream = await send(client, req, res, d, provider, path, search, body.forward);
    await relayAnswer(ctx, res, principal, provider, d, upstream, d.label === 'responses_object' ? renamers.get(provider.name) : undefined);
  };
}

async function send(
  client: UpstreamClient,
  req: IncomingMessage,
  res: ServerResponse,
  d: Extract<PassDecision, { kind: 'forward' }>,
  provider: ProviderConfig,
  path: string,
  search: string,
  body: string | Transform | undefined,
) {
  const ac = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) ac.abort();
  };
  res.on('close', onClose);
  try {
    return await client.forward({
      provider,
      method: d.method,
      subpath: path.slice('/v1'.length),
      search,
      headers: forwardHeaders(req, body),
      body,
      requestId: recordOf(res).requestId,
      signal: ac.signal,
      timeoutMs: provider.timeout_ms,
    });
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    if ((err as { cause?: unknown })?.cause instanceof GatewayError) throw (err as { cause: GatewayError }).cause;
    const reason = classifyNetworkError(err);
    if (reason === 'timeout') throw upstreamTimeout(`The provider "${provider.name}" did not answer in time.`);
    throw upstreamUnavailable(`The provider "${provider.name}" could not be reached for this request (${reason}).`);
  } finally {
    res.off('close', onClose);
  }
}

type Upstream = Awaited<ReturnType<UpstreamClient['forward']>>;

/** Sends the provider's answer on; JSON answers are read for their object id and usage, others stream through. */
async function relayAnswer(
  ctx: GatewayContext,
  res: ServerResponse,
  principal: Principal,
  provider: ProviderConfig,
  d: Extract<PassDecision, { kind: 'forward' }>,
  up: Upstream,
  rename: ((text: string) => string) | undefined,
): Promise<void> {
  const status = up.statusCode;
  if (status === 401 || status === 403) {
    await readErrorBody(up.body);
    throw upstreamUnavailable(`The provider "${provider.name}" rejected the gateway's provider credentials. This is a gateway configuration problem, not your key.`, 'upstream_auth_failed');
  }
  const contentType = String(up.headers['content-type'] ?? '');
  const ok = status >= 200 && status < 300;
  if (!ok) return relayError(res, provider, status, up, rename);
  if (!isJson(contentType)) {
    res.statusCode = status;
    for (const name of ['content-type', 'content-length', 'content-disposition'] as const) if (up.headers[name] !== undefined) res.setHeader(name, up.headers[name] as string);
    settle(ctx, principal, provider, d, undefined, recordOf(res).requestId);
    for await (const chunk of up.body) {
      if (res.destroyed) break;
      if (!res.write(chunk)) await drained(res);
    }
    if (res.destroyed) up.body.destroy();
    else res.end();
    return;
  }
  const raw = await readAnswer(up, provider);
  // A provider may echo the credentials it was sent: decoded, then redacted (core/redact); undecodable JSON goes as text without the raw key.
  const clean = redactJsonBody(raw.toString('utf8'), [providerApiKey(provider)]);
  let text = clean ? clean.text : redactText(raw.toString('utf8'), secretForms([providerApiKey(provider)]));
  if (rename) text = rename(text);
  const v = clean && rename ? (JSON.parse(text) as unknown) : clean?.parsed;
  const parsed = v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  await trackObject(ctx, principal, provider, d, parsed);
  settle(ctx, principal, provider, d, parsed, recordOf(res).requestId);
  sendJson(res, status, text);
}

async function readAnswer(up: Upstream, provider: ProviderConfig): Promise<Buffer> {
  try {
    return await readCapped(up.body, MAX_UPSTREAM_BODY_BYTES);
  } catch (err) {
    if (err instanceof BodyTooLargeError) throw upstreamUnavailable(`The provider "${provider.name}" sent an answer larger than the gateway relays.`);
    throw upstreamUnavailable(`The provider "${provider.name}" broke off its answer.`);
  }
}

/**
 * A provider's error answer, whatever its content type: JSON is decoded and redacted before it
 * is relayed with the provider's status; anything else (an HTML page, a header dump) is
 * replaced by a generic OpenAI-shaped error naming the status.
 */
async function relayError(res: ServerResponse, provider: ProviderConfig, status: number, up: Upstream, rename: ((text: string) => string) | undefined): Promise<void> {
  const raw = await readAnswer(up, provider);
  const clean = redactJsonBody(raw.toString('utf8'), [providerApiKey(provider)]);
  const text = JSON.stringify(openAiShaped(clean?.parsed) ?? genericProviderError(status));
  sendJson(res, status, rename ? rename(text) : text);
}

/** A provider error body with an `error.message`, completed to the OpenAI shape (type, code, param); else undefined. */
function openAiShaped(body: unknown): Record<string, unknown> | undefined {
  const e = (body as { error?: Record<string, unknown> } | null)?.error;
  if (!e || typeof e !== 'object' || typeof e.message !== 'string') return undefined;
  const error = { ...e, type: typeof e.type === 'string' ? e.type : 'invalid_request_error', code: typeof e.code === 'string' ? e.code : null, param: typeof e.param === 'string' ? e.param : null };
  return { ...(body as Record<string, unknown>), error };
}

const ITEM_COLLECTIONS: ReadonlySet<string> = new Set(['/v1/responses', '/v1/conversations']);

/** A created object is recorded against the team; a deleted one is forgotten. */
async function trackObject(
  ctx: GatewayContext,
  principal: Principal,
  provider: ProviderConfig,
  d: Extract<PassDecision, { kind: 'forward' }>,
  parsed: Record<string, unknown> | undefined,
): Promise<void> {
  const op = d.object;
  if (!op || !parsed) return;
  const method = d.method;
  if (method === 'DELETE' && op.id && op.rest === '') return ctx.objects.forget(op.id);
  // Items of a response or conversation (output, input_items, conversation items) are the team's too: item_reference may name them.
  if (ITEM_COLLECTIONS.has(op.collection) && method !== 'DELETE') {
    const items = itemIds(parsed);
    if (items.length) await ctx.objects.recordMany(items, { team: principal.team, provider: provider.name }, STORED_RESPONSE_TTL_SECONDS);
  }
  if (method !== 'POST' || typeof parsed.id !== 'string' || parsed.id === op.id) return;
  const ttl = d.entry ? objectLifetimeSeconds(parsed, d.entry.object_ttl_seconds, ctx.now()) : STORED_RESPONSE_TTL_SECONDS;
  await ctx.objects.record(parsed.id, { team: principal.team, provider: provider.name }, ttl);
}

const NO_USAGE: Usage = Object.freeze({ prompt_tokens: 0, completion_tokens: 0 });

function settle(
  ctx: GatewayContext,
  principal: Principal,
  provider: ProviderConfig,
  d: Extract<PassDecision, { kind: 'forward' }>,
  parsed: Record<string, unknown> | undefined,
  requestId: string,
): void {
  // A stored response read carries the usage of its creation, already accounted: a read costs nothing and uses no tokens.
  const { usage, costUsd: cost, unpriced } = d.entry ? priceAnswer(d.entry, parsed) : { usage: NO_USAGE, costUsd: 0, unpriced: false };
  ctx.tenancy.settle({ principal, requestId, provider: provider.name, model: d.label, usage, estimated: false, unpriced, costUsd: cost, listCostUsd: cost, cached: false, at: ctx.now() });
}
