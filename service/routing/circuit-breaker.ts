/**
 * Circuit breaker per provider and model. The transitions are a pure function of
 * (state, event, now, settings); CircuitBreakers keeps one state per key and reports
 * transitions to a callback (metrics).
 */
export type CircuitStateName = 'closed' | 'open' | 'half-open';

export interface BreakerSettings {
  consecutiveFailures: number;
  errorRateThreshold: number;
  windowMs: number;
  minRequests: number;
  cooldownMs: number;
}

export interface CircuitState {
  name: CircuitStateName;
  consecutiveFailures: number;
  windowStart: number;
  windowTotal: number;
  windowFailures: number;
  openedAt: number;
  /** A half-open probe is out; others are refused until it returns. */
  probeInFlight: boolean;
}

export const initialCircuit = (now: number): CircuitState => ({
  name: 'closed',
  consecutiveFailures: 0,
  windowStart: now,
  windowTotal: 0,
  windowFailures: 0,
  openedAt: 0,
  probeInFlight: false,
});

const open = (s: CircuitState, now: number): CircuitState => ({ ...s, name: 'open', openedAt: now, probeInFlight: false });

/** May a request go to this provider now? Open circuits refuse until the cooldown passes. */
export function canPass(s: CircuitState, now: number, cfg: BreakerSettings): boolean {
  if (s.name === 'closed') return true;
  if (s.name === 'open') return now - s.openedAt >= cfg.cooldownMs;
  return !s.probeInFlight;
}

/** Called when a request is actually sent: an open circuit past its cooldown lets one probe through. */
export function onAttempt(s: CircuitState, now: number, cfg: BreakerSettings): CircuitState {
  if (s.name === 'open' && now - s.openedAt >= cfg.cooldownMs) return { ...s, name: 'half-open', probeInFlight: true };
  if (s.name === 'half-open') return { ...s, probeInFlight: true };
  return s;
}

export function onResult(s: CircuitState, ok: boolean, now: number, cfg: BreakerSettings): CircuitState {
  if (s.name === 'half-open') {
    return ok ? initialCircuit(now) : open(s, now);
  }
  if (s.name === 'open') return s; // a straggler from before the circuit opened
  const fresh = now - s.windowStart >= cfg.windowMs;
  const windowStart = fresh ? now : s.windowStart;
  const windowTotal = (fresh ? 0 : s.windowTotal) + 1;
  const windowFailures = (fresh ? 0 : s.windowFailures) + (ok ? 0 : 1);
  const consecutiveFailures = ok ? 0 : s.consecutiveFailures + 1;
  const next: CircuitState = { ...s, windowStart, windowTotal, windowFailures, consecutiveFailures };
  if (ok) return next;
  const tooMany = consecutiveFailures >= cfg.consecutiveFailures;
  const rateTooHigh = windowTotal >= cfg.minRequests && windowFailures / windowTotal >= cfg.errorRateThreshold;
  return tooMany || rateTooHigh ? open(next, now) : next;
}

/** Forces the circuit open (a provider answering 401/403 has a bad key). */
export const forceOpen = (s: CircuitState, now: number): CircuitState => open(s, now);

export class CircuitBreakers {
  /** By provider, then model: two lookups of strings already hashed, instead of a key string built and hashed per call (several calls a request). */
  private readonly states = new Map<string, Map<string, CircuitState>>();

  constructor(
    private readonly cfg: BreakerSettings,
    private readonly now: () => number,
    private readonly onTransition: (provider: string, model: string, from: CircuitStateName, to: CircuitStateName) => void = () => {},
  ) {}

  get(provider: string, model: string): CircuitState {
    return this.states.get(provider)?.get(model) ?? initialCircuit(this.now());
  }

  private set(provider: string, model: string, next: CircuitState): void {
    const prev = this.get(provider, model);
    let byModel = this.states.get(provider);
    if (!byModel) this.states.set(provider, (byModel = new Map()));
    byModel.set(model, next);
    if (prev.name !== next.name) this.onTransition(provider, model, prev.name, next.name);
  }

  canPass(provider: string, model: string): boolean {
    return canPass(this.get(provider, model), this.now(), this.cfg);
  }

  /** Milliseconds until an open circuit admits a probe (0 when it already would). */
  retryInMs(provider: string, model: string): number {
    const s = this.get(provider, model);
    return s.name === 'open' ? Math.max(0, s.openedAt + this.cfg.cooldownMs - this.now()) : 0;
  }

  attempt(provider: string, model: string): void {
    this.set(provider, model, onAttempt(this.get(provider, model), this.now(), this.cfg));
  }

  record(provider: string, model: string, ok: boolean): void {
    this.set(provider, model, onResult(this.get(provider, model), ok, this.now(), this.cfg));
  }

  /** A half-open probe that ended without a verdict (client went away) frees the slot. */
  release(provider: string, model: string): void {
    const s = this.get(provider, model);
    if (s.name === 'half-open' && s.probeInFlight) this.set(provider, model, { ...s, probeInFlight: false });
  }

  trip(provider: string, model: string): void {
    this.set(provider, model, forceOpen(this.get(provider, model), this.now()));
  }
}
