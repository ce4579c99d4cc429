/**
 * The pooled keep-alive client for providers (undici). Each provider type's adapter says how
 * it is addressed and authenticated; this knows nothing about retries or routing.
 *
 * With HTTPS_PROXY / HTTP_PROXY in the environment, each provider's pool is undici's
 * EnvHttpProxyAgent instead: requests tunnel through the proxy (CONNECT) unless NO_PROXY names
 * the host (same rules as curl: `host`, `.domain`, `host:port`, `*`).
 */
import { Readable } from 'node:stream';
import type { CancelSignal } from './cancel';
import { EnvHttpProxyAgent, Pool } from 'undici';
import type Dispatcher from 'undici/types/dispatcher';
import type { ProviderConfig } from '../config/schema';
import type { Endpoint } from '../core/endpoints';
import { adapterFor } from '../providers/registry';
import type { Target } from '../providers/types';
import type { Candidate } from '../routing/catalog';
import { ProxySettings, proxyFromEnv } from './proxy';
import { BufferedCall, BufferedResponse, dispatchBuffered } from './buffered-answer';

export interface UpstreamCall {
  candidate: Candidate;
  endpoint: Endpoint;
  stream: boolean;
  /** The JSON body's bytes (made once per candidate and model: inbound/types.ts, bodyFor). */
  body: Buffer;
  requestId: string;
  signal: CancelSignal;
  /** Longest wait for response headers, and for each body chunk. */
  timeoutMs: number;
  /** Longest wait between body chunks when it differs from timeoutMs (a stream's time between events). */
  bodyTimeoutMs?: number;
  /** Trace context for the provider (traceparent, tracestate), when tracing is on. */
  headers?: Record<string, string>;
}

export type UpstreamResponse = Dispatcher.ResponseData;

export type { Target } from '../providers/types';

/** Where and how to send a call to this provider (pure; unit-tested): its adapter decides. */
export function targetFor(provider: ProviderConfig, endpoint: Endpoint, upstreamModel: string, stream = false): Target {
  return adapterFor(provider.type).target(provider, endpoint, upstreamModel, stream);
}

/**
 * Where a pass-through or stored-object call goes: `subpath` is the client's path below /v1
 * (e.g. /files/file-abc/content), `search` its query string ("" or "?..."). Headers carry the
 * provider's credentials only; the caller adds content headers.
 */
export function targetForPath(provider: ProviderConfig, subpath: string, search: string): Target {
  return adapterFor(provider.type).targetForPath(provider, subpath, search);
}

export interface ForwardCall {
  provider: ProviderConfig;
  method: 'GET' | 'POST' | 'DELETE';
  /** The client's path below /v1. */
  subpath: string;
  search: string;
  headers: Record<string, string>;
  body?: string | Buffer | NodeJS.ReadableStream;
  requestId: string;
  signal: CancelSignal;
  timeoutMs: number;
}

/**
 * The request body as undici is given it. undici keeps that body (its request handler and its
 * request) until the answer ends, a stream's whole life. A JSON answer is given the bytes. A
 * stream with a prompt of some size is given them as a one-shot stream, with their length: once
 * undici has read them the stream has ended and holds nothing, so an open stream keeps no copy of
 * its prompt for the provider call (the parsed request it keeps for continuation is the only one).
 */
function requestBody(bytes: Buffer, stream: boolean): { body: Buffer | Readable; length: Record<string, string> } {
  return stream && bytes.length > ONE_SHOT_MIN_BYTES ? { body: oneShot(bytes), length: { 'content-length': String(bytes.length) } } : { body: bytes, length: {} };
}

/** Under this a stream keeps its bytes: the one-shot stream's own objects cost ~1 KB a stream (--stream-heap). */
const ONE_SHOT_MIN_BYTES = 2048;

/** A stream of `bytes` that lets go of them once read (a generator would not: a finished one keeps its locals). */
function oneShot(bytes: Buffer): Readable {
  let held: Buffer | null = bytes;
  return new Readable({
    read() {
      const b = held;
      held = null;
      this.push(b);
    },
  });
}

export class UpstreamClient {
  private readonly pools = new Map<string, Dispatcher>();
  private readonly targets = new Map<string, Target>();
  private readonly proxy: ProxySettings | undefined;

  /** `env` is where the proxy settings come from (the process environment unless a test injects one). */
  constructor(
    private readonly providers: ProviderConfig[],
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.proxy = proxyFromEnv(env);
    // What an adapter loads on first use is loaded now, for the types configured, not on a request's path.
    for (const p of providers) adapterFor(p.type).prepare?.();
  }

  private pool(provider: ProviderConfig, origin: string): Dispatcher {
    let pool = this.pools.get(provider.name);
    if (!pool) {
      const options = {
        connections: provider.max_connections,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 600_000,
        connectTimeout: Math.min(10_000, provider.timeout_ms),
        pipelining: 1,
      };
      pool = this.proxy ? new EnvHttpProxyAgent({ ...options, ...this.proxy }) : new Pool(origin, options);
      this.pools.set(provider.name, pool);
    }
    return pool;
  }

  private target(c: Candidate, endpoint: Endpoint, stream: boolean): Target {
    const key = `${c.provider.name}\u0000${endpoint}\u0000${c.upstreamModel}\u0000${stream}`;
    let t = this.targets.get(key);
    if (!t) {
      t = targetFor(c.provider, endpoint, c.upstreamModel, stream);
      this.targets.set(key, t);
    }
    return t;
  }

  send(call: UpstreamCall): Promise<UpstreamResponse> {
    return this.signed(call, (t, signed) => this.pool(call.candidate.provider, t.origin).request({ ...this.options(call, t, signed), signal: call.signal as AbortSignal })); // undici listens with addEventListener; see cancel.ts
  }

  /** A non-streaming call, its answer read whole (buffered-answer.ts: cheaper than `send` and reading its body). */
  sendBuffered(call: UpstreamCall, read: Omit<BufferedCall, 'signal'>): Promise<BufferedResponse> {
    return this.signed(call, (t, signed) => dispatchBuffered(this.pool(call.candidate.provider, t.origin), this.options(call, t, signed), { ...read, signal: call.signal }));
  }

  /** Where the call goes, and (SigV4) its signature, made just before it goes: its authentication depends on its body and time. */
  private signed<T>(call: UpstreamCall, go: (t: Target, signed?: Record<string, string>) => Promise<T>): Promise<T> {
    const t = this.target(call.candidate, call.endpoint, call.stream);
    const sign = adapterFor(call.candidate.provider.type).sign;
    return sign ? sign(call.candidate.provider, t, call.body, this.env).then((signed) => go(t, signed)) : go(t);
  }

  /** The provider call itself, with the signature's headers when there are any. */
  private options(call: UpstreamCall, t: Target, signed?: Record<string, string>): Dispatcher.DispatchOptions {
    const { body, length } = requestBody(call.body, call.stream);
    return {
      origin: t.origin,
      method: 'POST',
      path: t.path,
      headers: { ...call.headers, ...t.headers, ...signed, ...length, 'x-request-id': call.requestId },
      body,
      headersTimeout: call.timeoutMs,
      bodyTimeout: call.bodyTimeoutMs ?? call.timeoutMs,
    };
  }

  /** One call to one provider for a pass-through or stored-object path (no retries: it may not be idempotent). */
  forward(call: ForwardCall): Promise<UpstreamResponse> {
    const t = targetForPath(call.provider, call.subpath, call.search);
    return this.pool(call.provider, t.origin).request({
      origin: t.origin, // a proxy agent (EnvHttpProxyAgent) serves many origins: it needs to be told which
      method: call.method,
      path: t.path,
      headers: { ...call.headers, ...t.headers, 'x-request-id': call.requestId },
      body: call.body as Dispatcher.DispatchOptions['body'],
      signal: call.signal as AbortSignal, // undici listens with addEventListener; see cancel.ts
      headersTimeout: call.timeoutMs,
      bodyTimeout: call.timeoutMs,
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close().catch(() => undefined)));
  }
}

/** Names an undici/network error for logs and metrics without leaking hosts or keys. */
export function classifyNetworkError(err: unknown): 'timeout' | 'refused' | 'reset' | 'dns' | 'aborted' | 'network' {
  const e = err as { code?: string; name?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code ?? '';
  if (e?.name === 'AbortError' || code === 'UND_ERR_ABORTED' || code === 'ABORT_ERR') return 'aborted';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return 'timeout';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return 'reset';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns';
  return 'network';
}
