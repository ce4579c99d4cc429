/**
 * Background I/O that must not delay a request's own: `inBackground(fn)` runs `fn` in the check
 * phase of the next event-loop iteration, after everything this iteration writes.
 *
 * Why: a request's provider call is written in the check phase of the turn that sends it (undici
 * first lets an idle keep-alive socket show it was closed, with setImmediate), and on this
 * machine's loopback a write that wakes another process costs 100-300 µs. A background Redis
 * call (a lease prefetch, a budget refresh) set off by the same request and issued in this
 * iteration would be built and written first (ioredis's auto-pipelining also writes from a
 * setImmediate), in front of the provider call: that was about a quarter of a millisecond on
 * the first byte at low load. One iteration later it follows the provider call instead.
 */
export function inBackground(fn: () => void): void {
  setImmediate(() => setImmediate(fn));
}
