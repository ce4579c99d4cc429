/**
 * The V8 flags the gateway runs with, wherever it runs: the container's command (infra/gateway.ts),
 * the Dockerfile's CMD (a test keeps the two equal) and the benchmark's gateway.
 *
 * --max-semi-space-size=16: the young generation's two halves at most 16 MB each, as Node 20 sized
 * them. Node 24 (V8 13) grows them to 32 MB on a machine with much memory, which doubled the young
 * generation and, in `npm run bench`, took the gateway's RSS at 1,000 requests/s from 130 MB
 * (Node 20) to 246 MB; requests allocate ~10-20 KB each, and a 16 MB half still holds well over
 * the in-flight requests of a busy replica, so scavenges stay cheap.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];
