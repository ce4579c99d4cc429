/**
 * The V8 flags the gateway runs with, wherever it runs: the container's command (infra/gateway.ts),
 * the Dockerfile's CMD (a test keeps the two equal) and the benchmark's gateway.
 *
 * --max-semi-space-size=8: the young generation's two halves at most 8 MB each. Node 24 (V8 13)
 * grows them to 32 MB on a machine with much memory, which took the gateway's RSS at 1,000
 * requests/s to 246 MB in `npm run bench` (Node 20, 16 MB halves: 130 MB). Measured with
 * `npm run bench -- --gc` on Node 24: 8 MB halves scavenge twice as often as 16 MB ones (76 vs 38
 * per 10,000 requests) for ~3 µs more GC pause per request (7-8 -> 9-10 µs, about 1.5 % of the
 * CPU per request), promote no more (0.2-0.3 KB per request either way: a request's ~50 KB
 * is almost all garbage by the next scavenge), and keep ~18 MB less resident.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8'];
