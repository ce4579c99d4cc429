/**
 * Background responses (`POST /v1/responses` with `background: true`) answer before the model
 * has produced anything, with no usage. The gateway keeps each such response's settlement open
 * and polls the provider for it (GET /responses/{id}, backing off from 2 s to 30 s) until it is
 * completed, failed, cancelled or incomplete; then the request is settled on the usage the
 * provider reports. A response still running after `maxAgeMs`, or when the gateway shuts down
 * (after one last poll), is settled on its expected tokens (the request's max_output_tokens, or
 * the default) and marked estimated: every background response is accounted, once. Until then
 * the request's budget reservation (its maximum cost, made at admission) stays held.
 */
import type { Candidate } from '../routing/catalog';
import { Cancel } from '../upstream/cancel';
import type { UpstreamClient } from '../upstream/client';
import { readCapped } from '../upstream/read-body';

/** Statuses after which a response no longer changes (OpenAI's Response object). */
const FINAL = new Set(['completed', 'failed', 'cancelled', 'incomplete']);
const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface BackgroundWatch {
  id: string;
  candidate: Candidate;
  requestId: string;
  /** Settles on the final Response object. */
  settle(final: Record<string, unknown>): void;
  /** Settles on the expected tokens, marked estimated (the response never showed its usage). */
  settleEstimate(): void;
}

export interface BackgroundOptions {
  firstPollMs?: number;
  maxPollMs?: number;
  maxAgeMs?: number;
  now?: () => number;
}

interface Pending {
  watch: BackgroundWatch;
  startedAt: number;
  delayMs: number;
  timer?: NodeJS.Timeout;
}

export class BackgroundResponses {
  private readonly pending = new Map<string, Pending>();
  private readonly firstPollMs: number;
  private readonly maxPollMs: number;
  private readonly maxAgeMs: number;
  private readonly now: () => number;

  constructor(
    private readonly client: UpstreamClient,
    opts: BackgroundOptions = {},
  ) {
    this.firstPollMs = opts.firstPollMs ?? 2_000;
    this.maxPollMs = opts.maxPollMs ?? 30_000;
    this.maxAgeMs = opts.maxAgeMs ?? 24 * 3600_000;
    this.now = opts.now ?? Date.now;
  }

  /** Responses whose settlement is still open. */
  get size(): number {
    return this.pending.size;
  }

  watch(watch: BackgroundWatch): void {
    const p: Pending = { watch, startedAt: this.now(), delayMs: this.firstPollMs };
    this.pending.set(watch.id, p);
    this.schedule(p);
  }

  private schedule(p: Pending): void {
    p.timer = setTimeout(() => void this.poll(p), p.delayMs);
    p.timer.unref();
  }

  /** The provider's current Response object, or undefined when it could not be read. */
  private async fetch(w: BackgroundWatch, timeoutMs: number): Promise<Record<string, unknown> | undefined> {
    try {
      const res = await this.client.forward({
        provider: w.candidate.provider,
        method: 'GET',
        subpath: `/responses/${encodeURIComponent(w.id)}`,
        search: '',
        headers: { accept: 'application/json' },
        requestId: w.requestId,
        signal: new Cancel().signal,
        timeoutMs,
      });
      const body = await readCapped(res.body, MAX_BODY_BYTES);
      if (res.statusCode !== 200) return undefined;
      const parsed = JSON.parse(body.toString('utf8')) as unknown;
      return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }

  private async poll(p: Pending): Promise<void> {
    if (!this.pending.has(p.watch.id)) return;
    const r = await this.fetch(p.watch, 10_000);
    if (!this.pending.has(p.watch.id)) return;
    if (r && FINAL.has(String(r.status))) return this.close(p, () => p.watch.settle(r));
    if (this.now() - p.startedAt >= this.maxAgeMs) return this.close(p, () => p.watch.settleEstimate());
    p.delayMs = Math.min(this.maxPollMs, p.delayMs * 2);
    this.schedule(p);
  }

  private close(p: Pending, settle: () => void): void {
    clearTimeout(p.timer);
    this.pending.delete(p.watch.id);
    settle();
  }

  /** On shutdown: one last poll of each open response, then the rest settled on their estimate. */
  async stop(): Promise<void> {
    const open = [...this.pending.values()];
    await Promise.all(
      open.map(async (p) => {
        clearTimeout(p.timer);
        const r = await this.fetch(p.watch, 2_000);
        if (this.pending.has(p.watch.id)) this.close(p, r && FINAL.has(String(r.status)) ? () => p.watch.settle(r) : () => p.watch.settleEstimate());
      }),
    );
  }
}
