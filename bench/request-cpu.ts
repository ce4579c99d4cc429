/**
 * npm run bench -- --request-cpu [--baseline GIT_REF] [--rounds N] [--seconds S] [--prompt-kb K]
 *
 * CPU per non-streaming chat completion at peak: wrk's 50 connections for S seconds (default 5),
 * each request a short prompt or, with --prompt-kb, a conversation of about K KB (bench/prompts.ts),
 * through node-floor, the gateway and, with --baseline, a gateway built from GIT_REF, targets
 * alternating within each round (bench/side-by-side.ts). Each figure is the target's CPU (user +
 * system, /proc) over the run divided by the requests it served: the same measure as the full
 * run's "CPU per request at peak", without the rest of the run, so that a change to the
 * request path can be compared with its parent on one machine in a few minutes.
 */
import { SideBySideRow, sideBySide, renderSideBySide } from './side-by-side';
import type { Target } from './targets';
import { promptLabel } from './prompts';

export interface RequestCpuDeps {
  dir: string;
  closedLoop(dir: string, t: Target, seconds: number, body: string): Promise<{ requests: number; non2xx: number; socketErrors: number; cpuUs: number }>;
  log(m: string): void;
}

export async function requestCpuPhase(d: RequestCpuDeps, o: { rounds: number; seconds: number; baseline?: string; body: string }): Promise<SideBySideRow[]> {
  return sideBySide({
    dir: d.dir,
    rounds: o.rounds,
    baseline: o.baseline,
    upstream: { chunks: 20, intervalMs: 5 },
    log: (m) => d.log(`request-cpu ${m}`),
    once: async (t) => {
      const r = await d.closedLoop(d.dir, t, o.seconds, o.body);
      if (!r.requests || r.non2xx || r.socketErrors) throw new Error(`request-cpu: ${t.name}: ${r.requests} requests, ${r.non2xx} non-2xx, ${r.socketErrors} socket errors`);
      return r.cpuUs / r.requests;
    },
    unit: 'µs/request',
  });
}

export const renderRequestCpu = (rows: SideBySideRow[], seconds: number, promptKb = 0): string =>
  renderSideBySide(`CPU per request at peak (wrk, 50 connections, ${seconds} s a round${promptLabel(promptKb)})`, 'µs/request', rows);
