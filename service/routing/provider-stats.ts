/**
 * Recent latency and error rate per provider and model, as exponentially weighted moving
 * averages, measured by the gateway itself. Feeds latency-optimal and balanced routing
 * and the status endpoint.
 */
export interface ProviderStats {
  /** EWMA of time to first byte, ms (undefined until measured). */
  ttfbMs?: number;
  /** EWMA of total time, ms. */
  totalMs?: number;
  /** EWMA of failure (1) / success (0). */
  errorRate: number;
  samples: number;
  lastSuccessAt?: number;
  lastFailureAt?: number;
  /** When the last attempt started (set before its outcome is known). */
  lastAttemptAt?: number;
}

export const ewma = (prev: number | undefined, sample: number, alpha: number): number => (prev === undefined ? sample : prev + alpha * (sample - prev));

export class StatsTracker {
  /** provider -> model -> stats, updated in place (no key string or object built per request). */
  private readonly stats = new Map<string, Map<string, ProviderStats>>();

  constructor(
    private readonly alpha: number,
    private readonly now: () => number,
  ) {}

  private entry(provider: string, model: string): ProviderStats {
    let byModel = this.stats.get(provider);
    if (!byModel) this.stats.set(provider, (byModel = new Map()));
    let s = byModel.get(model);
    if (!s) byModel.set(model, (s = { errorRate: 0, samples: 0 }));
    return s;
  }

  /** The provider's stats for the model (live: read them, do not keep them as a snapshot). */
  get(provider: string, model: string): ProviderStats {
    return this.stats.get(provider)?.get(model) ?? { errorRate: 0, samples: 0 };
  }

  /** An attempt starts: latency-optimal sends a provider being probed no more probes meanwhile. */
  recordAttempt(provider: string, model: string): void {
    this.entry(provider, model).lastAttemptAt = this.now();
  }

  recordSuccess(provider: string, model: string, ttfbMs: number, totalMs?: number): void {
    const s = this.entry(provider, model);
    s.ttfbMs = ewma(s.ttfbMs, ttfbMs, this.alpha);
    if (totalMs !== undefined) s.totalMs = ewma(s.totalMs, totalMs, this.alpha);
    s.errorRate = ewma(s.samples ? s.errorRate : undefined, 0, this.alpha);
    s.samples++;
    s.lastSuccessAt = this.now();
  }

  /** Updates total time of a stream once it finished (ttfb was recorded when it started). */
  recordTotal(provider: string, model: string, totalMs: number): void {
    const s = this.entry(provider, model);
    s.totalMs = ewma(s.totalMs, totalMs, this.alpha);
  }

  recordFailure(provider: string, model: string): void {
    const s = this.entry(provider, model);
    s.errorRate = ewma(s.samples ? s.errorRate : undefined, 1, this.alpha);
    s.samples++;
    s.lastFailureAt = this.now();
  }
}
