/**
 * The V8 flags the gateway runs with, wherever it runs: the container's command (infra/gateway.ts),
 * the Dockerfile's CMD (a test keeps the two equal) and the benchmark's gateway.
 *
 * --max-semi-space-size=16: the young generation's two halves at most 16 MB each, as Node 20 sized
 * them. Node 24 (V8 13) grows them to 32 MB on a machine with much memory: in `npm run bench` on
 * Node 24 that held 246 MB of RSS at 1,000 requests/s with RSS growing 24 % over the soak; with
 * this flag, 163 and 176 MB, +0.5 % and +6.8 % (two runs). Halves of 8 MB were measured too (`npm run bench -- --gc`): twice
 * the scavenges (76 vs 38 per 10,000 requests) and ~3 µs more GC pause per request, for 3 MB less
 * RSS in the full run, so 16 it is. A request allocates ~50 KB and promotes ~0.2 KB.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];
