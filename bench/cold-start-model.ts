/**
 * The pure parts of the cold-start phase (bench/cold-start.ts), shared with the load generator:
 * Envoy's slow-start share and the p99 of each window of a run.
 */
import { pct, sortNum } from './lib';

/**
 * The share of its full weight Envoy gives an endpoint `t` seconds after it joined, with slow start
 * over `windowSeconds` (Envoy's "Slow start mode", aggression 1.0, the only one Envoy Gateway sets):
 * max(minShare, max(t, 1) / window), and all of it once the window is over. Envoy's default minimum
 * is 10 % (min_weight_percent).
 */
export function slowStartShare(t: number, windowSeconds: number, minShare = 0.1): number {
  if (windowSeconds <= 0 || t >= windowSeconds) return 1;
  return Math.min(1, Math.max(minShare, Math.max(t, 1) / windowSeconds));
}

export interface LatencyWindow {
  /** Start of the window, ms from the start of the measured run. */
  fromMs: number;
  /** Successful requests issued in it. */
  requests: number;
  /** Their p99 latency, µs (null when none). */
  p99Us: number | null;
}

/** Each `windowMs` window of a `totalMs` run: the requests issued in it (by [issued at ms, latency µs]) and their p99. */
export function latencyWindows(timed: [number, number][], windowMs: number, totalMs: number): LatencyWindow[] {
  const n = Math.ceil(totalMs / windowMs);
  const byWindow: number[][] = Array.from({ length: n }, () => []);
  for (const [at, us] of timed) {
    const i = Math.floor(at / windowMs);
    if (i >= 0 && i < n) byWindow[i].push(us);
  }
  return byWindow.map((xs, i) => ({ fromMs: i * windowMs, requests: xs.length, p99Us: xs.length ? pct(sortNum(xs), 99) : null }));
}
