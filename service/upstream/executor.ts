/**
 * Carries one client request through its routing plan: attempts a provider, retries it
 * with backoff, fails over to the next candidate, all under one request deadline. For
 * streams, a provider counts as successful only once its first chunk has arrived, so
 * failover happens before the first byte reaches the client.
 */
import { bodyChunks } from './body-chunks';
import { Cancel, CancelSignal } from './cancel';
import { setTimeout as sleep } from 'node:timers/promises';
import { GatewayConfig, providerApiKey } from '../config/schema';
import { MaybePromise, then } from '../core/maybe-async';
import { badRequest, GatewayError, rateLimited, serviceUnavailable, upstreamTimeout, upstreamUnavailable } from '../core/errors';
import type { Metrics } from '../metrics/metrics';
import type { Candidate, Endpoint } from '../routing/catalog';
import { adapterFor } from '../providers/registry';
import { isContextLengthError } from '../providers/common';
import { CredentialsError, RequestTranslationError, StreamEventError } from '../providers/types';
import { decideRetry, retryAfterMs } from '../routing/backoff';
import type { CircuitBreakers } from '../routing/circuit-breaker';
import type { StatsTracker } from '../routing/provider-stats';
import type { RequestTrace } from '../telemetry/trace-types';
import { classifyNetworkError, UpstreamClient, UpstreamResponse } from './client';
import { BodyTooLargeError, ERROR_BODY_LIMIT, readErrorBody } from './read-body';
import type { BufferedResponse } from './buffered-answer';
import { EVENT_END, EventTooLargeError, findEventEnd, inspectEvent, MAX_EVENT_CHARS } from '../core/sse';
import { redactJsonBody } from '../core/redact';

/** Largest non-streaming upstream body the gateway will hold in memory. */
export const MAX_UPSTREAM_BODY_BYTES = 32 * 1024 * 1024;

/** How a relayed stream ended: the provider finished it, cut it, sent an unusable event, or the client left. */
export type StreamEnd = 'completed' | 'cut' | 'invalid' | 'client_gone';

export interface StreamHandle {
  first: Buffer;
  rest: AsyncIterator<Buffer>;
  /** Aborts the upstream request (client went away). */
  abort(): void;
  /** Must be called when the relay ends, to release listeners. */
  done(): void;
  /**
   * Records how the stream ended, once: the provider's stats, breaker, latency and the stream
   * metrics. The executor owns every attempt's outcome; callers only report the end.
   */
  finish(end: StreamEnd, dropped?: number): void;
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
  bodyFor: (c: Candidate) => Buffer;
  stream: boolean;
  requestId: string;
  /** Aborted when the client goes away (an AbortSignal does too). */
  clientSignal: CancelSignal;
  deadline: number;
  /** Providers of this type answer in the client's own wire format: their answers and streams are not translated. */
  nativeType?: string;
  /** The request's server span when tracing is on: one client span per attempt, whose traceparent goes upstream. */
  trace?: RequestTrace;
  /** The inbound API's name (the endpoint label of the client-facing metrics). */
  label: string;
  /** When the client's request started (for the stream's time to first byte). */
  startedAt: number;
}

type FailureKind =
  | 'timeout'
  | 'headers_timeout'
  | 'first_token_timeout'
  | 'refused'
  | 'reset'
  | 'dns'
  | 'network'
  | 'status_retryable'
  | 'provider_auth'
  | 'not_found'
  | 'status_other'
  | 'invalid_json'
  | 'invalid_stream'
  | 'empty_stream'
  | 'too_large'
  | 'context_length';

type AttemptFailure = { kind: 'failure'; reason: FailureKind; status?: number; retryAfterMs?: number; retryable: boolean };

type Attempt =
  | { kind: 'success'; result: Omit<Success, 'attempts' | 'ok'> }
  | AttemptFailure
  | { kind: 'client_error'; error: GatewayError }
  /** The request is longer than this model's context window: only a larger window can serve it. */
  | { kind: 'too_long'; error: GatewayError }
  | { kind: 'client_gone' };

/** What one request's attempts have come to so far (for the failover metric and the final error). */
interface Run {
  attempts: number;
  last?: AttemptFailure;
  lastProvider?: string;
  skippedOpen: number;
  deadlineHit: boolean;
  /** A target answered context_length_exceeded: its error, and the largest window known too small. */
  tooLong?: { error: GatewayError; window: number };
}

export interface ExecutorDeps {
  config: GatewayConfig;
  client: UpstreamClient;
  breakers: CircuitBreakers;
  stats: StatsTracker;
  metrics: Metrics;
  admitProvider: (provider: string) => MaybePromise<boolean>;
  now: () => number;
  random: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const defaultSleep = (ms: number, signal: AbortSignal) => sleep(ms, undefined, { signal }).catch(() => undefined);

/** The upstream's 4xx (not auth, not retryable) is about the client's request: relay it in the OpenAI shape. */
function relayClientError(status: number, text: string, c: Candidate): GatewayError {
  // A provider may echo the credentials it was sent, in any encoding: the body is decoded, then redacted (core/redact).
  const clean = redactJsonBody(text, [providerApiKey(c.provider)]);
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

type Expiry = 'timeout' | 'headers_timeout' | 'first_token_timeout';

/** One timer re-armed per phase of an attempt; `expired` names the phase whose deadline passed. */
class PhaseTimer {
  expired: Expiry | undefined = undefined;
  private timer: NodeJS.Timeout | undefined = undefined;

  constructor(private readonly onExpire: () => void) {}

  arm(ms: number, phase: Expiry): void {
    this.stop();
    this.timer = setTimeout(() => {
      this.expired = phase;
      this.onExpire();
    }, ms);
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
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

  /**
   * The deadlines of one attempt: headers (connect and response headers), then for a stream its
   * first event; both only while a fallback remains (the last candidate gets its whole timeout).
   * Missing one of them is a reason to fail over, not to retry; the attempt's own timeout is.
   */
  private phases(timeoutMs: number, hasFallback: boolean, stream: boolean): { headersMs: number; firstEventMs: number } {
    const d = this.deps.config.routing.deadlines;
    return {
      headersMs: hasFallback ? Math.min(d.headers_ms, timeoutMs) : timeoutMs,
      firstEventMs: hasFallback && stream ? Math.min(d.first_token_ms, timeoutMs) : timeoutMs,
    };
  }

  private async attemptOnce(c: Candidate, input: ExecuteInput, timeoutMs: number, hasFallback: boolean, headers?: Record<string, string>): Promise<Attempt> {
    const { client, now } = this.deps;
    let body: Buffer;
    try {
      body = input.bodyFor(c);
    } catch (err) {
      if (err instanceof RequestTranslationError) return { kind: 'client_error', error: badRequest(err.message, 'unsupported_by_provider', err.param) };
      throw err;
    }
    const ac = new Cancel();
    const onClientAbort = () => ac.abort();
    // The closures below outlive the attempt on a stream: they hold the signal, never `input` (its bodyFor memo holds the upstream body, a prompt's size).
    const clientSignal = input.clientSignal;
    clientSignal.addEventListener('abort', onClientAbort, { once: true });
    const { headersMs, firstEventMs } = this.phases(timeoutMs, hasFallback, input.stream);
    const timer = new PhaseTimer(() => ac.abort());
    timer.arm(headersMs, headersMs < timeoutMs ? 'headers_timeout' : 'timeout');
    const startedAt = now();
    const call = { c, input, ac, startedAt, ttfbMs: 0, keepListener: false, stopTimer: () => timer.stop(), done: () => clientSignal.removeEventListener('abort', onClientAbort) };
    const onHeaders = this.headersIn(call, timer, timeoutMs, headersMs, firstEventMs);
    try {
      // A stream's silence between events: the stall deadline, never longer than the provider's own timeout.
      const bodyTimeoutMs = input.stream ? Math.min(this.deps.config.routing.deadlines.between_events_ms, timeoutMs) : undefined;
      const upstreamCall = { candidate: c, endpoint: input.endpoint, stream: input.stream, body, requestId: input.requestId, signal: ac.signal, timeoutMs, bodyTimeoutMs, headers };
      if (!input.stream) return this.answerOf(await client.sendBuffered(upstreamCall, { limit: MAX_UPSTREAM_BODY_BYTES, errorLimit: ERROR_BODY_LIMIT, onHeaders }), call);
      const res = await client.send(upstreamCall);
      onHeaders();
      const status = res.statusCode;
      if (status >= 200 && status < 300) return await this.readStream(res, call);
      return this.statusFailure(status, res.headers as Record<string, string | undefined>, await readErrorBody(res.body), c, input.model);
    } catch (err) {
      if (input.clientSignal.aborted) return { kind: 'client_gone' };
      // The attempt's own timeout is worth a retry; a missed headers or first-token deadline means fail over now.
      if (timer.expired) return { kind: 'failure', reason: timer.expired, retryable: timer.expired === 'timeout' };
      if (err instanceof BodyTooLargeError || err instanceof EventTooLargeError) return { kind: 'failure', reason: 'too_large', retryable: false };
      if (err instanceof StreamEventError) return { kind: 'failure', reason: 'invalid_stream', retryable: err.retryable };
      if (err instanceof CredentialsError) return { kind: 'failure', reason: 'provider_auth', retryable: false };
      const reason = classifyNetworkError(err);
      return { kind: 'failure', reason: reason === 'aborted' ? 'network' : reason, retryable: true };
    } finally {
      timer.stop();
      if (!call.keepListener) call.done();
    }
  }

  /**
   * When an attempt's headers are in: its time to first byte, and the next phase's deadline (without
   * a fallback it is the attempt's own, already armed). Made here, not in attemptOnce: a closure
   * there would hold `call` (and its input, the upstream bodies) for an open stream's life.
   */
  private headersIn(call: AttemptCall, timer: PhaseTimer, timeoutMs: number, headersMs: number, firstEventMs: number): () => void {
    const { now } = this.deps;
    return () => {
      call.ttfbMs = now() - call.startedAt;
      if (firstEventMs < timeoutMs || headersMs < timeoutMs) timer.arm(Math.max(0, firstEventMs - call.ttfbMs), firstEventMs < timeoutMs ? 'first_token_timeout' : 'timeout');
    };
  }

  /** A 2xx stream: successful once its first event is in (translated to the OpenAI shape for other wire formats). */
  private async readStream(res: UpstreamResponse, call: AttemptCall): Promise<Attempt> {
    const { c, ac } = call;
    const translation = c.provider.type === call.input.nativeType ? undefined : adapterFor(c.provider.type).translation;
    if (!String(res.headers['content-type'] ?? '').includes(translation?.streamContentType ?? 'text/event-stream')) {
      await readErrorBody(res.body);
      return { kind: 'failure', reason: 'invalid_stream', retryable: false };
    }
    const rest = bodyChunks(res.body, translation?.streamTranslator(Math.floor(this.deps.now() / 1000), c.upstreamModel));
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
    // An endless stream is ended (the relay sees the abort as a cut and writes the clean error event).
    const endless = setTimeout(() => ac.abort(), this.deps.config.routing.deadlines.stream_ms);
    // Held for the stream's life: what they need, not `call` (its input holds the request's upstream bodies).
    const release = call.done;
    const done = () => {
      clearTimeout(endless);
      release();
    };
    const finish = this.streamFinisher(c.provider.name, call.input.model, call.input.label, call.startedAt, done);
    return { kind: 'success', result: { candidate: c, ttfbMs: call.ttfbMs, startedAt: call.startedAt, stream: { first, rest, abort: () => ac.abort(), done, finish } } };
  }

  /** The end of one stream, recorded once against its provider (see StreamHandle.finish). */
  private streamFinisher(p: string, model: string, label: string, startedAt: number, done: () => void): (end: StreamEnd, dropped?: number) => void {
    let finished = false;
    return (end, dropped = 0) => {
      if (finished) return;
      finished = true;
      done();
      const { stats, breakers, metrics, now } = this.deps;
      if (dropped > 0) metrics.streamEventsDropped.inc({ provider: p, model }, dropped);
      if (end === 'cut' || end === 'invalid') {
        metrics.streamInterruptions.inc({ provider: p, model });
        stats.recordFailure(p, model);
        breakers.record(p, model, false);
      } else if (end === 'completed') {
        const totalMs = now() - startedAt;
        stats.recordTotal(p, model, totalMs);
        metrics.upstreamLatency.observe({ provider: p, model, phase: 'total' }, totalMs / 1000);
      } else {
        metrics.clientDisconnects.inc({ endpoint: label });
      }
    };
  }

  /** A non-streaming answer: a 2xx one parsed, an error one classified. */
  private answerOf(res: BufferedResponse, call: AttemptCall): Attempt {
    const status = res.statusCode;
    if (status >= 200 && status < 300) return this.readJson(res.body, call);
    return this.statusFailure(status, res.headers as Record<string, string | undefined>, res.body.toString('utf8'), call.c, call.input.model);
  }

  /** A 2xx JSON answer, raw and parsed (translated to the OpenAI shape for other wire formats). */
  private readJson(body: Buffer, call: AttemptCall): Attempt {
    let raw = body;
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
      case 'client': {
        const error = relayClientError(status, this.hideUpstreamName(text, c, model), c);
        return isContextLengthError(error.code, error.message) ? { kind: 'too_long', error } : { kind: 'client_error', error };
      }
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
    const plan = this.deps.config.routing.fallback ? input.plan : input.plan.slice(0, 1);
    const run: Run = { attempts: 0, skippedOpen: 0, deadlineHit: false };
    for (let i = 0; i < plan.length; i++) {
      const c = plan[i];
      const admitted = this.admitCandidate(run, c, input);
      if (!(admitted instanceof Promise ? await admitted : admitted)) continue;
      const result = await this.tryCandidate(run, c, input, i < plan.length - 1);
      if (result) return result;
      if (run.deadlineHit) break;
    }
    return { ok: false, attempts: run.attempts, error: this.finalError(input, run) };
  }

  /** Whether a candidate may be tried now: its circuit and its provider quota (counting a failover to it). */
  private admitCandidate(run: Run, c: Candidate, input: ExecuteInput): MaybePromise<boolean> {
    const { breakers, metrics } = this.deps;
    const p = c.provider.name;
    // After a context_length_exceeded, only a target with a larger declared window is worth the request.
    if (run.tooLong && !((c.contextWindow ?? 0) > run.tooLong.window)) return false;
    if (!breakers.canPass(p, input.model)) {
      run.skippedOpen++;
      return false;
    }
    return then(this.deps.admitProvider(p), (admitted) => {
      if (!admitted) {
        metrics.upstreamAttempts.inc({ provider: p, model: input.model, outcome: 'provider_rate_limited' });
        return false;
      }
      if (run.lastProvider !== undefined && run.last) metrics.failovers.inc({ from_provider: run.lastProvider, to_provider: p, model: input.model, reason: run.last.reason });
      return true;
    });
  }

  /** Attempts one candidate with retries; a result ends the request, undefined moves on to the next candidate. */
  private async tryCandidate(run: Run, c: Candidate, input: ExecuteInput, hasFallback: boolean): Promise<ExecuteResult | undefined> {
    const { breakers, stats, metrics, now } = this.deps;
    const p = c.provider.name;
    for (let retries = 0; ; retries++) {
      const remaining = input.deadline - now();
      if (remaining <= 0) {
        run.deadlineHit = true;
        return undefined;
      }
      run.attempts++;
      breakers.attempt(p, input.model);
      stats.recordAttempt(p, input.model);
      const span = input.trace?.attempt(c, input.endpoint, run.attempts);
      const outcome = await this.attemptOnce(c, input, Math.min(c.provider.timeout_ms, remaining), hasFallback, span?.headers);
      span?.end(outcome);
      if (outcome.kind === 'client_gone') {
        breakers.release(p, input.model);
        metrics.upstreamAttempts.inc({ provider: p, model: input.model, outcome: 'client_gone' });
        return this.clientGone(input, run.attempts);
      }
      if (outcome.kind === 'client_error') {
        breakers.record(p, input.model, true);
        metrics.upstreamAttempts.inc({ provider: p, model: input.model, outcome: 'client_error' });
        return { ok: false, attempts: run.attempts, error: outcome.error };
      }
      if (outcome.kind === 'too_long') {
        breakers.record(p, input.model, true); // the request's size, not the provider's health
        metrics.upstreamAttempts.inc({ provider: p, model: input.model, outcome: 'context_length' });
        run.tooLong = { error: outcome.error, window: Math.max(run.tooLong?.window ?? 0, c.contextWindow ?? 0) };
        run.last = { kind: 'failure', reason: 'context_length', status: outcome.error.status, retryable: false };
        run.lastProvider = p;
        return undefined;
      }
      if (outcome.kind === 'success') return { ok: true, attempts: run.attempts, ...this.recordSuccess(p, input, outcome.result) };
      const delayMs = this.recordFailure(run, p, input, outcome, retries);
      if (delayMs === undefined) return undefined;
      metrics.retries.inc({ provider: p, model: input.model, reason: outcome.reason });
      await this.sleepUnlessGone(delayMs, input.clientSignal);
      if (input.clientSignal.aborted) return this.clientGone(input, run.attempts);
    }
  }

  private recordSuccess(p: string, input: ExecuteInput, result: Omit<Success, 'attempts' | 'ok'>): Omit<Success, 'attempts' | 'ok'> {
    const { breakers, stats, metrics, now } = this.deps;
    const model = input.model;
    breakers.record(p, model, true);
    metrics.providerUnhealthy.set({ provider: p }, 0);
    metrics.upstreamAttempts.inc({ provider: p, model, outcome: 'success' });
    metrics.upstreamLatency.observe({ provider: p, model, phase: 'ttfb' }, result.ttfbMs / 1000);
    if (result.stream) metrics.streamTtfb.observe({ provider: p, model }, (now() - input.startedAt) / 1000);
    if (result.json) {
      const total = now() - result.startedAt;
      metrics.upstreamLatency.observe({ provider: p, model, phase: 'total' }, total / 1000);
      stats.recordSuccess(p, model, result.ttfbMs, total);
    } else {
      stats.recordSuccess(p, model, result.ttfbMs);
    }
    return result;
  }

  /** Records a failed attempt; the backoff before retrying the same provider, or undefined to move on. */
  private recordFailure(run: Run, p: string, input: ExecuteInput, outcome: AttemptFailure, retries: number): number | undefined {
    const { config, breakers, stats, metrics, now } = this.deps;
    const r = config.routing;
    run.last = outcome;
    run.lastProvider = p;
    stats.recordFailure(p, input.model);
    metrics.upstreamAttempts.inc({ provider: p, model: input.model, outcome: outcome.reason });
    if (outcome.reason === 'provider_auth') {
      breakers.trip(p, input.model);
      metrics.providerUnhealthy.set({ provider: p }, 1);
      return undefined;
    }
    breakers.record(p, input.model, false);
    if (!outcome.retryable) return undefined;
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
      if (decision.reason === 'deadline') run.deadlineHit = true;
      return undefined;
    }
    // This failure opened the circuit: move on now.
    return breakers.canPass(p, input.model) ? decision.delayMs : undefined;
  }

  private clientGone(input: ExecuteInput, attempts: number): Failure {
    this.deps.metrics.clientDisconnects.inc({ endpoint: input.label });
    return { ok: false, attempts, clientGone: true, error: new GatewayError(499, 'invalid_request_error', 'client_closed_request', 'Client closed the request.') };
  }

  private finalError(input: ExecuteInput, run: Run): GatewayError {
    const { attempts, last, lastProvider, skippedOpen, deadlineHit } = run;
    const model = input.model;
    // No target with a larger context window answered: the provider's own 400 says why.
    if (last?.reason === 'context_length' && run.tooLong) return run.tooLong.error;
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
    if (deadlineHit || last?.reason === 'timeout' || last?.reason === 'headers_timeout' || last?.reason === 'first_token_timeout') {
      return upstreamTimeout(`No provider for model "${model}" answered in time (${summary}; last: ${lastProvider} ${last?.reason ?? 'deadline'}).`);
    }
    if (last?.reason === 'status_retryable' && last.status === 429) {
      return rateLimited(`Every provider for model "${model}" is rate limiting the gateway (${summary}).`, Math.ceil((last.retryAfterMs ?? 1000) / 1000), {}, 'upstream_rate_limited');
    }
    if (last?.reason === 'provider_auth') {
      return upstreamUnavailable(
        `No provider for model "${model}" is available: the last one (${lastProvider}) rejected the gateway's provider credentials (${summary}). This is a gateway configuration problem, not your key.`,
        'upstream_auth_failed',
      );
    }
    const what = last?.status ? `HTTP ${last.status}` : (last?.reason ?? 'error');
    return upstreamUnavailable(`No provider for model "${model}" could serve the request (${summary}; last: ${lastProvider} ${what}).`);
  }
}
