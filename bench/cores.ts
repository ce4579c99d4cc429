/**
 * Placing the benchmark's processes on cores (Linux `taskset`), to tell a proxy's own tail from the
 * one it gets by sharing this machine's cores with the load generator, the upstream and Redis.
 *
 * On a 2-core machine every process of the run competes for both cores, so a request can wait for
 * a core while the load generator or the upstream runs. In production the load is elsewhere and a
 * replica has its CPU (a Guaranteed pod, or the static CPU manager's exclusive cores). The isolated
 * variant of a phase puts each proxy on PROXY_CPU and everything else on OTHER_CPUS.
 */
import { spawnSync, SpawnSyncReturns } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus as cpuList } from 'node:os';
import { hasCommand } from './lib';

export const PROXY_CPU = '0';
export const OTHER_CPUS = '1';

/** Why processes cannot be placed here, or null when they can. */
export function cannotIsolate(cpus = cpuList().length, taskset = hasCommand('taskset')): string | null {
  if (!taskset) return 'taskset is not installed (util-linux)';
  if (cpus < 2) return `${cpus} CPU: a proxy cannot have a core of its own`;
  return null;
}

/** taskset refused to place a process (it is gone, or this process may not set its affinity). */
export class PlacementError extends Error {}

/** What a failed taskset call said (its error output, the spawn error, its output, or its exit status). */
const tasksetSaid = (r: SpawnSyncReturns<string>): string => (r.stderr || r.error?.message || r.stdout || `exit ${r.status}`).trim();

/** Every thread of `pid` on `cpus` (a taskset list); throws a PlacementError when taskset refuses. */
export function placeProcess(pid: number, cpus: string): void {
  // taskset --all-tasks walks /proc/PID/task, and answers 0 for a pid that is not there.
  if (!existsSync(`/proc/${pid}/task`)) throw new PlacementError(`taskset -p ${cpus} ${pid}: no such process`);
  const r = spawnSync('taskset', ['--all-tasks', '--pid', '--cpu-list', cpus, String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new PlacementError(`taskset -p ${cpus} ${pid}: ${tasksetSaid(r)}`);
}

/**
 * Puts the proxies on PROXY_CPU and the other processes on OTHER_CPUS; the returned function puts
 * each back on the CPUs it had. If one cannot be placed, those already placed are put back and the
 * PlacementError is thrown.
 */
export function isolate(proxyPids: number[], otherPids: number[]): () => void {
  const plan = [...proxyPids.map((pid) => [pid, PROXY_CPU] as const), ...otherPids.map((pid) => [pid, OTHER_CPUS] as const)];
  const placed: Array<{ pid: number; had: string }> = [];
  const undo = () => {
    for (const { pid, had } of placed) {
      try {
        placeProcess(pid, had);
      } catch {
        /* the process is gone: nothing to put back */
      }
    }
  };
  try {
    for (const [pid, cpus] of plan) {
      const had = cpusOf(pid);
      placeProcess(pid, cpus);
      placed.push({ pid, had });
    }
  } catch (err) {
    undo();
    throw err;
  }
  return undo;
}

/** The CPUs `pid` may run on, as taskset lists them (`0,1` or `0-1`); a PlacementError when taskset cannot tell. */
export function cpusOf(pid: number): string {
  const r = spawnSync('taskset', ['--pid', '--cpu-list', String(pid)], { encoding: 'utf8' });
  const list = r.status === 0 ? /:\s*(\S+)\s*$/.exec(r.stdout)?.[1] : undefined;
  if (!list) throw new PlacementError(`taskset -p ${pid}: ${tasksetSaid(r)}`);
  return list;
}

/** The command prefix that starts a process (the load generator) on `cpus`. */
export const onCpus = (cpus: string): string[] => ['taskset', '--cpu-list', cpus];
