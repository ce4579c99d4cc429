/**
 * Placing the benchmark's processes on cores (Linux `taskset`), to tell a proxy's own tail from the
 * one it gets by sharing this machine's cores with the load generator, the upstream and Redis.
 *
 * On a 2-core machine every process of the run competes for both cores, so a request can wait for
 * a core while the load generator or the upstream runs. In production the load is elsewhere and a
 * replica has its CPU (a Guaranteed pod, or the static CPU manager's exclusive cores). The isolated
 * variant of a phase puts each proxy on PROXY_CPU and everything else on OTHER_CPUS.
 */
import { spawnSync } from 'node:child_process';
import { cpus as cpuList } from 'node:os';
import { hasCommand } from './lib';

export const PROXY_CPU = '0';
export const OTHER_CPUS = '1';
const ALL_CPUS = `0-${Math.max(1, cpuList().length - 1)}`;

/** Why processes cannot be placed here, or null when they can. */
export function cannotIsolate(cpus = cpuList().length, taskset = hasCommand('taskset')): string | null {
  if (!taskset) return 'taskset is not installed (util-linux)';
  if (cpus < 2) return `${cpus} CPU: a proxy cannot have a core of its own`;
  return null;
}

/** Every thread of `pid` on `cpus` (a taskset list); throws when taskset refuses. */
export function placeProcess(pid: number, cpus: string): void {
  const r = spawnSync('taskset', ['--all-tasks', '--pid', '--cpu-list', cpus, String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset -p ${cpus} ${pid}: ${r.stderr || r.error?.message}`);
}

/** Puts the proxies on PROXY_CPU and the other processes on OTHER_CPUS; the returned function puts them all back on every core. */
export function isolate(proxyPids: number[], otherPids: number[]): () => void {
  for (const pid of proxyPids) placeProcess(pid, PROXY_CPU);
  for (const pid of otherPids) placeProcess(pid, OTHER_CPUS);
  return () => {
    for (const pid of [...proxyPids, ...otherPids]) {
      try {
        placeProcess(pid, ALL_CPUS);
      } catch {
        /* the process is gone: nothing to put back */
      }
    }
  };
}

/** The command prefix that starts a process (the load generator) on `cpus`. */
export const onCpus = (cpus: string): string[] => ['taskset', '--cpu-list', cpus];
