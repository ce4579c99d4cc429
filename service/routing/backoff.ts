/** Retry decisions as pure functions: how long to wait, and whether to try again (which statuses are retryable is the provider adapters' call: providers/common.ts). */

/**
 * Exponential backoff with full jitter: a uniform delay in [0, min(max, base * 2^attempt)).
 * `attempt` counts retries already made (0 for the first retry).
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

/**
 * Milliseconds a Retry-After header asks for (seconds or an HTTP date), or undefined when
 * absent or unparsable. `retry-after-ms` (sent by OpenAI) wins when present.
 */
export function retryAfterMs(headers: { 'retry-after'?: string; 'retry-after-ms'?: string }, now: number): number | undefined {
  const ms = headers['retry-after-ms'];
  if (ms !== undefined && /^\d+(\.\d+)?$/.test(ms.trim())) return Math.ceil(Number(ms));
  const value = headers['retry-after'];
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.ceil(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export type RetryDecision = { retry: true; delayMs: number } | { retry: false; reason: 'attempts' | 'deadline' | 'retry-after-too-long' };

/**
 * Whether to retry the same provider after a retryable failure, and after how long:
 * Retry-After is honoured when it fits under the cap and the deadline, else we move on.
 */
export function decideRetry(input: {
  retriesSoFar: number;
  maxRetries: number;
  baseMs: number;
  maxDelayMs: number;
  retryAfterMs?: number;
  retryAfterCapMs: number;
  remainingMs: number;
  random: () => number;
}): RetryDecision {
  if (input.retriesSoFar >= input.maxRetries) return { retry: false, reason: 'attempts' };
  let delayMs: number;
  if (input.retryAfterMs !== undefined) {
    if (input.retryAfterMs > input.retryAfterCapMs) return { retry: false, reason: 'retry-after-too-long' };
    delayMs = input.retryAfterMs;
  } else {
    delayMs = backoffDelay(input.retriesSoFar, input.baseMs, input.maxDelayMs, input.random);
  }
  if (delayMs >= input.remainingMs) return { retry: false, reason: 'deadline' };
  return { retry: true, delayMs };
}
