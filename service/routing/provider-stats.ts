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

export const ewma = (prev: number | undefined, sample: number, alpha: number): number =>
  prev === undefined ? sample : prev + alpha * (sample - prev);

export class StatsTracker {
  private readonly stats = new Map<string, ProviderStats>();

  constructor(private readonly alpha: number, private readonly now: () => number) {}

  private key = (provider: string, model: string) => `${provider}\u0000${model}`;

  get(provider: string, model: string): ProviderStats {
    return this.stats.get(this.key(provider, model)) ?? { errorRate: 0, samples: 0 };
  }

  /** An attempt starts: latency-optimal sends a provider being probed no more probes meanwhile. */
  recordAttempt(provider: string, model: string): void {
    this.stats.set(this.key(provider, model), { ...this.get(provider, model), lastAttemptAt: this.now() });
  }

  recordSuccess(provider: string, model: string, ttfbMs: number, totalMs?: number): void {
    const s = this.get(provider, model);
    this.stats.set(this.key(provider, model), {
      ...s,
      ttfbMs: ewma(s.ttfbMs, ttfbMs, this.alpha),
      totalMs: totalMs === undefined ? s.totalMs : ewma(s.totalMs, totalMs, this.alpha),
      errorRate: ewma(s.samples ? s.errorRate : undefined, 0, this.alpha),
      samples: s.samples + 1,
      lastSuccessAt: this.now(),
    });
  }

  /** Updates total time of a stream once it finished (ttfb was recorded when it started). */
  recordTotal(provider: string, model: string, totalMs: number): void {
    const s = this.get(provider, model);
    this.stats.set(this.key(provider, model), { ...s, totalMs: ewma(s.totalMs, totalMs, this.alpha) });
  }

  recordFailure(provider: string, model: string): void {
    const s = this.get(provider, model);
    this.stats.set(this.key(provider, model), {
      ...s,
      errorRate: ewma(s.samples ? s.errorRate : undefined, 1, this.alpha),
      samples: s.samples + 1,
      lastFailureAt: this.now(),
    });
  }
}
