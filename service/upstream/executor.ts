/**
 * Carries one client request through its routing plan: attempts a provider, retries it
 * with backoff, fails over to the next candidate, all under one request deadline. For
 * streams, a provider counts as successful only once its first chunk has arrived, so
 * failover happens before the first byte reaches the client.
 */
import { Cancel, CancelSignal } from './cancel';
import { setTimeout as sleep } from 'node:timers/promises';
import type { GatewayConfig } from '../config/schema';
import { badRequest, GatewayError, rateLimited, serviceUnavailable, upstreamTimeout, upstreamUnavailable } from '../core/errors';
import type { Metrics } from '../metrics/metrics';
import type { Candidate, Endpoint } from '../routing/catalog';
import { adapterFor } from '../providers/registry';
import { CredentialsError, RequestTranslationError, StreamEventError } from '../providers/types';
import { decideRetry, retryAfterMs } from '../routing/backoff';
import type { CircuitBreakers } from '../routing/circuit-breaker';
import type { StatsTracker } from '../routing/provider-stats';
import type { RequestTrace } from '../telemetry/trace-types';
import { classifyNetworkError, UpstreamClient, UpstreamResponse } from './client';
import { BodyTooLargeError, readCapped, readErrorBody } from './read-body';
import { EVENT_END, EventTooLargeError, findEventEnd, inspectEvent, MAX_EVENT_CHARS } from '../core/sse';
import { redactJsonBody } from '../core/redact';

/** Largest non-streaming upstream body the gateway will hold in memory. */
export const MAX_UPSTREAM_BODY_BYTES = 32 * 1024 * 1024;

export interface StreamHandle {
  first: Buffer;
  rest: AsyncIterator<Buffer>;
  /** Aborts the upstream request (client went away). */
  abort(): void;
  /** Must be called when the relay ends, to release listeners. */
  done(): void;
}

export interface Success {
  ok: true;
  candidate: Candidate;
  attempts: number;
  ttfbMs: number;
  startedAt: number;
  /** Non-streaming: the upstream's JSON, raw and parsed. */
  json?: { raw: Buffer; parsed: Record<string, unknown> };
  stream?: StreamHandle;
}

export interface Failure {
  ok: false;
  attempts: number;
  error: GatewayError;
  /** The client went away; nobody is listening for the error. */
  clientGone?: boolean;
}

export type ExecuteResult = Success | Failure;

export interface ExecuteInput {
  model: string;
  endpoint: Endpoint;
  plan: Candidate[];
  bodyFor: (c: Candidate) => string;
  stream: boolean;
  requestId: string;
  /** Aborted when the client goes away (an AbortSignal does too). */
  clientSignal: CancelSignal;
  deadline: number;
  /** Providers of this type answer in the client's own wire format: their answers and streams are not translated. */
  nativeType?: string;
  /** The request's server span when tracing is on: one client span per attempt, whose traceparent goes upstream. */
  trace?: RequestTrace;
}

type FailureKind =
  | 'timeout' | 'refused' | 'reset' | 'dns' | 'network'
  | 'status_retryable' | 'provider_auth' | 'not_found' | 'status_other'
  | 'invalid_json' | 'invalid_stream' | 'empty_stream' | 'too_large';

type Attempt =
  | { kind: 'success'; result: Omit<Success, 'attempts' | 'ok'> }
  | { kind: 'failure'; reason: FailureKind; status?: number; retryAfterMs?: number; retryable: boolean }
  | { kind: 'client_error'; error: GatewayError }
  | { kind: 'client_gone' };

export interface ExecutorDeps {
  config: GatewayConfig;
  client: UpstreamClient;
  breakers: CircuitBreakers;
  stats: StatsTracker;
  metrics: Metrics;
  admitProvider: (provider: string) => Promise<boolean>;
  now: () => number;
  random: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const defaultSleep = (ms: number, signal: AbortSignal) => sleep(ms, undefined, { signal }).catch(() => undefined);

/** The upstream's 4xx (not auth, not retryable) is about the client's request: relay it in the OpenAI shape. */
function relayClientError(status: number, text: string, c: Candidate): GatewayError {
  // A provider may echo the credentials it was sent, in any encoding: the body is decoded, then redacted (core/redact).
  const clean = redactJsonBody(text, [c.provider.api_key]);
  const e = clean && adapterFor(c.provider.type).errorBody(clean.text);
  if (e) return new GatewayError(status, e.type as never, e.code ?? 'upstream_rejected', e.message.slice(0, 2000), {}, e.param);
  return new GatewayError(status, 'invalid_request_error', 'upstream_rejected', `The provider rejected the request (HTTP ${status}).`);
}

/**
 * Reads the stream until its first complete SSE event (or its end); returns the bytes read.
 * Each chunk is scanned once (with the two bytes before it, where a terminator may begin). A
 * first event over MAX_EVENT_CHARS throws EventTooLargeError: nothing has reached the client,
 * so the attempt fails and the executor fails over.
 */
async function readFirstEvent(rest: AsyncIterator<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tail = '';
  for (;;) {
    const next = await rest.next();
    if (next.done || !next.value?.length) break;
    chunks.push(next.value);
    size += next.value.length;
    const text = tail + next.value.toString('latin1');
    const hit = findEventEnd(text);
    if ((hit ? size - next.value.length - tail.length + hit.end : size) > MAX_EVENT_CHARS) throw new EventTooLargeError(MAX_EVENT_CHARS);
    if (hit) break;
    tail = text.slice(-2);
  }
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
}

function firstEventInvalid(first: Buffer): boolean {
  const text = first.toString('utf8');
  const m = EVENT_END.exec(text);
  if (!m) return false; // incomplete: the relay decides when the rest arrives
  return inspectEvent(text.slice(0, m.index), false, { outputText: '', sawDone: false }) === 'invalid';
}

/** One attempt's state, shared by the readers of its answer. */
interface AttemptCall {
  c: Candidate;
  input: ExecuteInput;
  ac: Cancel;
  startedAt: number;
  ttfbMs: number;
  keepListener: boolean;
  stopTimer: () => void;
  done: () => void;
}


export class Executor {
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;

  constructor(private readonly deps: ExecutorDeps) {
    this.sleep = deps.sleep ?? defaultSleep;
  }

  private async attemptOnce(c: Candidate, input: ExecuteInput, timeoutMs: number, headers?: Record<string, string>): Promise<Attempt> {
    const { client, now } = this.deps;
    let body: string;
    try {
      body = input.bodyFor(c);
    } catch (err) {
      if (err instanceof RequestTranslationError) return { kind: 'client_error', error: badRequest(err.message, 'unsupported_by_provider', err.param) };
      throw err;
    }
    const ac = new Cancel();
    let timedOut = false;
    const onClientAbort = () => ac.abort();
    input.clientSignal.addEventListener('abort', onClientAbort, { once: true });
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, timeoutMs);
    const startedAt = now();
    const call = { c, input, ac, startedAt, ttfbMs: 0, keepListener: false, stopTimer: () => clearTimeout(timer), done: () => input.clientSignal.removeEventListener('abort', onClientAbort) };
    try {
      const res = await client.send({ candidate: c, endpoint: input.endpoint, stream: input.stream, body, requestId: input.requestId, signal: ac.signal, timeoutMs, headers });
      call.ttfbMs = now() - startedAt;
      const status = res.statusCode;
      if (status >= 200 && status < 300) return input.stream ? await this.readStream(res, call) : await this.readJson(res, call);
      return this.statusFailure(status, res.headers as Record<string, string | undefined>, await readErrorBody(res.body), c, input.model);
    } catch (err) {
      if (input.clientSignal.aborted) return { kind: 'client_gone' };
      if (timedOut) return { kind: 'failure', reason: 'timeout', retryable: true };
      if (err instanceof BodyTooLargeError || err instanceof EventTooLargeError) return { kind: 'failure', reason: 'too_large', retryable: false };
      if (err instanceof StreamEventError) return { kind: 'failure', reason: 'invalid_stream', retryable: err.retryable };
      if (err instanceof CredentialsError) return { kind: 'failure', reason: 'provider_auth', retryable: false };
      const reason = classifyNetworkError(err);
      return { kind: 'failure', reason: reason === 'aborted' ? 'network' : reason, retryable: true };
    } finally {
      clearTimeout(timer);
      if (!call.keepListener) call.done();
    }
  }

  /** A 2xx stream: successful once its first event is in (translated to the OpenAI shape for other wire formats). */
  private async readStream(res: UpstreamResponse, call: AttemptCall): Promise<Attempt> {
    const { c, ac } = call;
    const translation = c.provider.type === call.input.nativeType ? undefined : adapterFor(c.provider.type).translation;
    if (!String(res.headers['content-type'] ?? '').includes(translation?.streamContentType ?? 'text/event-stream')) {
      await readErrorBody(res.body);
      return { kind: 'failure', reason: 'invalid_stream', retryable: false };
    }
    const raw = res.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const rest = translation ? translation.translateStream(raw, Math.floor(this.deps.now() / 1000), c.upstreamModel) : raw;
    let first: Buffer;
    try {
      first = await readFirstEvent(rest);
    } catch (err) {
      res.body.destroy(); // an oversized or invalid first event: stop reading the provider before failing over
      throw err;
    }
    if (!first.length) return { kind: 'failure', reason: 'empty_stream', retryable: false };
    // Nothing has reached the client yet: an invalid first event is a provider fault to fail over from.
    if (firstEventInvalid(first)) {
      res.body.destroy();
      return { kind: 'failure', reason: 'invalid_stream', retryable: false };
    }
    call.stopTimer();
    call.keepListener = true;
    return { kind: 'success', result: { candidate: c, ttfbMs: call.ttfbMs, startedAt: call.startedAt, stream: { first, rest, abort: () => ac.abort(), done: call.done } } };
  }

  /** A 2xx JSON answer, raw and parsed (translated to the OpenAI shape for other wire formats). */
  private async readJson(res: UpstreamResponse, call: AttemptCall): Promise<Attempt> {
    let raw = await readCapped(res.body, MAX_UPSTREAM_BODY_BYTES);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      return { kind: 'failure', reason: 'invalid_json', retryable: false };
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { kind: 'failure', reason: 'invalid_json', retryable: false };
    const translation = call.c.provider.type === call.input.nativeType ? undefined : adapterFor(call.c.provider.type).translation;
    if (translation) {
      parsed = translation.responseJson(parsed as Record<string, unknown>, Math.floor(this.deps.now() / 1000), call.c.upstreamModel);
      raw = Buffer.from(JSON.stringify(parsed), 'utf8');
    }
    return { kind: 'success', result: { candidate: call.c, ttfbMs: call.ttfbMs, startedAt: call.startedAt, json: { raw, parsed: parsed as Record<string, unknown> } } };
  }

  /** A non-2xx answer, classified by the provider's adapter. */
  private statusFailure(status: number, headers: Record<string, string | undefined>, text: string, c: Candidate, model: string): Attempt {
    switch (adapterFor(c.provider.type).classifyStatus(status)) {
      case 'retryable':
        return { kind: 'failure', reason: 'status_retryable', status, retryable: true, retryAfterMs: retryAfterMs(headers, this.deps.now()) };
      case 'auth':
        return { kind: 'failure', reason: 'provider_auth', status, retryable: false };
      case 'not_found':
        return { kind: 'failure', reason: 'not_found', status, retryable: false };
      case 'client':
        return { kind: 'client_error', error: relayClientError(status, this.hideUpstreamName(text, c, model), c) };
      default:
        return { kind: 'failure', reason: 'status_other', status, retryable: false };
    }
  }

  /** A relayed provider error names the model as the client did, unless upstream names are exposed. */
  private hideUpstreamName(text: string, c: Candidate, model: string): string {
    if (this.deps.config.routing.expose_upstream_model || c.upstreamModel === model || c.upstreamModel.length < 3) return text;
    return text.split(c.upstreamModel).join(model);
  }

  /** Backoff between attempts, cut short when the client goes away (a real AbortSignal, made only when a retry waits). */
  private async sleepUnlessGone(ms: number, client: CancelSignal): Promise<void> {
    if (client.aborted) return;
    const ac = new AbortController();
    const onGone = () => ac.abort();
    client.addEventListener('abort', onGone, { once: true });
    try {
      await this.sleep(ms, ac.signal);
    } finally {
      client.removeEventListener('abort', onGone);
    }
  }

  async execute(input: ExecuteInput): Promise<ExecuteResult> {
    const { config, breakers, stats, metrics, now } = this.deps;
    const r = config.routing;
    const plan = r.fallback ? input.plan : input.plan.slice(0, 1);
    let attempts = 0;
    let last: Extract<Attempt, { kind: 'failure' }> | undefined;
    let lastProvider: string | undefined;
    let skippedOpen = 0;
    let deadlineHit = false;

    for (let i = 0; i < plan.length; i++) {
      const c = plan[i];
      const p = c.provider.name;
      if (!breakers.canPass(p, input.model)) {
        skippedOpen++;
        continue;
      }
      if (!(await this.deps.admitProvider(p))) {
        metrics.upstreamAttempts.inc({ provider: p, model: input.model, outcome: 'provider_rate_limited' });
        continue;
      }
      if (lastProvider !== undefined && last) {
        metrics.failovers.inc({ from_provider: lastProvider, to_provider: p, model: input.model, reason: last.reason });
      }
      for (let retries = 0; ; retries++) {
        const remaining = input.deadline - now();
        if (remaining <= 0) {
          deadlineHit = true;
          break;
        }
        attempts++;
        breakers.attempt(p, input.model);
        stats.recordAttempt(p, input.model);
        const span = input.trace?.attempt(c, input.endpoint, attempts);
        const outcome = await this.attemptOnce(c, input, Math.min(c.provider.timeout_ms, remaining), span?.headers);
        span?.end(outcome);
        if (outcome.kind === 'client_gone') {
          breakers.release(p, input.model);
          metrics.upstreamAttempts.inc({ provider: p, model: input.model, outcome: 'client_gone' });
          return { ok: false, attempts, clientGone: true, error: new GatewayError(499, 'invalid_request_error', 'client_closed_request', 'Client closed the request.') };
        }
        if (outcome.kind === 'client_error') {
          breakers.record(p, input.model, true);
          metrics.upstreamAttempts.inc({ provider: p, model: input.model, outcome: 'client_error' });
          return { ok: false, attempts, error: outcome.error };
        }
        if (outcome.kind === 'success') {
          breakers.record(p, input.model, true);
          metrics.providerUnhealthy.set({ provider: p }, 0);
          metrics.upstreamAttempts.inc({ provider: p, model: input.model, outcome: 'success' });
          metrics.upstreamLatency.observe({ provider: p, model: input.model, phase: 'ttfb' }, outcome.result.ttfbMs / 1000);
          if (outcome.result.json) {
            const total = now() - outcome.result.startedAt;
            metrics.upstreamLatency.observe({ provider: p, model: input.model, phase: 'total' }, total / 1000);
            stats.recordSuccess(p, input.model, outcome.result.ttfbMs, total);
          } else {
            stats.recordSuccess(p, input.model, outcome.result.ttfbMs);
          }
          return { ok: true, attempts, ...outcome.result };
        }
        last = outcome;
        lastProvider = p;
        stats.recordFailure(p, input.model);
        metrics.upstreamAttempts.inc({ provider: p, model: input.model, outcome: outcome.reason });
        if (outcome.reason === 'provider_auth') {
          breakers.trip(p, input.model);
          metrics.providerUnhealthy.set({ provider: p }, 1);
          break;
        }
        breakers.record(p, input.model, false);
        if (!outcome.retryable) break;
        const decision = decideRetry({
          retriesSoFar: retries,
          maxRetries: r.max_retries,
          baseMs: r.retry_delay_ms,
          maxDelayMs: r.max_retry_delay_ms,
          retryAfterMs: outcome.retryAfterMs,
          retryAfterCapMs: r.retry_after_cap_ms,
          remainingMs: input.deadline - now(),
          random: this.deps.random,
        });
        if (!decision.retry) {
          if (decision.reason === 'deadline') deadlineHit = true;
          break;
        }
        if (!breakers.canPass(p, input.model)) break; // this failure opened the circuit: move on now
        metrics.retries.inc({ provider: p, model: input.model, reason: outcome.reason });
        await this.sleepUnlessGone(decision.delayMs, input.clientSignal);
        if (input.clientSignal.aborted) {
          return { ok: false, attempts, clientGone: true, error: new GatewayError(499, 'invalid_request_error', 'client_closed_request', 'Client closed the request.') };
        }
      }
      if (deadlineHit) break;
    }
    return { ok: false, attempts, error: this.finalError(input, attempts, last, lastProvider, skippedOpen, deadlineHit) };
  }

  private finalError(
    input: ExecuteInput,
    attempts: number,
    last: Extract<Attempt, { kind: 'failure' }> | undefined,
    lastProvider: string | undefined,
    skippedOpen: number,
    deadlineHit: boolean,
  ): GatewayError {
    const model = input.model;
    if (attempts === 0) {
      if (deadlineHit) return upstreamTimeout(`The request deadline passed before any provider for model "${model}" could be tried.`);
      if (skippedOpen > 0) {
        const retryMs = Math.min(...input.plan.map((c) => this.deps.breakers.retryInMs(c.provider.name, model)));
        const e = serviceUnavailable(`Every provider for model "${model}" is failing (circuit open); retry later.`, 'providers_unavailable');
        return new GatewayError(e.status, e.type, e.code, e.message, { 'retry-after': String(Math.max(1, Math.ceil(retryMs / 1000))) });
      }
      return rateLimited(`Every provider for model "${model}" is at its configured request quota; retry shortly.`, 1, {}, 'provider_quota_exceeded');
    }
    const summary = `after ${attempts} attempt${attempts === 1 ? '' : 's'}`;
    if (deadlineHit || last?.reason === 'timeout') {
      return upstreamTimeout(`No provider for model "${model}" answered in time (${summary}; last: ${lastProvider} ${last?.reason ?? 'deadline'}).`);
    }
    if (last?.reason === 'status_retryable' && last.status === 429) {
      return rateLimited(`Every provider for model "${model}" is rate limiting the gateway (${summary}).`, Math.ceil((last.retryAfterMs ?? 1000) / 1000), {}, 'upstream_rate_limited');
    }
    if (last?.reason === 'provider_auth') {
      return upstreamUnavailable(`No provider for model "${model}" is available: the last one (${lastProvider}) rejected the gateway's provider credentials (${summary}). This is a gateway configuration problem, not your key.`, 'upstream_auth_failed');
    }
    const what = last?.status ? `HTTP ${last.status}` : last?.reason ?? 'error';
    return upstreamUnavailable(`No provider for model "${model}" could serve the request (${summary}; last: ${lastProvider} ${what}).`);
  }
}
