/**
 * Plumbing for bench/run.ts: child processes that die with the benchmark, /proc readers
 * (CPU ticks, RSS), free ports, readiness polling and percentiles.
 */
import { ChildProcess, spawn, SpawnOptions, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Every process the benchmark started, so that any exit path can stop them. */
const children = new Set<ChildProcess>();

export interface Started {
  proc: ChildProcess;
  /** stdout/stderr text collected so far (last 64 KiB), for error messages. */
  output(): string;
}

/** Spawns a child that is tracked for cleanup; its stdin is a pipe we hold (closing it tells helpers to exit). */
export function start(command: string, args: string[], opts: SpawnOptions & { stdout?: 'pipe' | number } = {}): Started {
  const proc = spawn(command, args, { ...opts, stdio: ['pipe', opts.stdout ?? 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString('utf8')).slice(-65536);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  proc.on('error', (err) => keep(Buffer.from(`spawn error: ${err.message}\n`)));
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return { proc, output: () => out };
}

/** Stops one child: SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(proc: ChildProcess, graceMs = 3000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((p) => stop(p)));
}

/** Last resort on process exit: synchronous SIGKILL of whatever is still running. */
process.on('exit', () => {
  for (const p of children) if (p.exitCode === null) p.kill('SIGKILL');
});

/** The first match of `re` in a started child's output, polled until `timeoutMs` passes or the child exits; else an Error of `failure` and the output. */
export async function outputMatch(s: Started, re: RegExp, timeoutMs: number, failure: string): Promise<RegExpExecArray> {
  for (const until = Date.now() + timeoutMs; Date.now() < until;) {
    const m = re.exec(s.output());
    if (m) return m;
    if (s.proc.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${failure}:\n${s.output()}`);
}

/** Runs a child to completion (tracked, bounded by `timeoutMs`), returning its stdout. */
export async function run(command: string, args: string[], timeoutMs: number, opts: SpawnOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(command, args, { ...opts, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-65536)));
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => {
    proc.once('error', (err) => {
      stderr += err.message;
      resolve(-1);
    });
    // 'close', not 'exit': a large result may still be in the pipe when the process exits.
    proc.once('close', (c) => resolve(c));
  });
  clearTimeout(timer);
  children.delete(proc);
  return { code, stdout, stderr };
}

export function hasCommand(name: string): boolean {
  return !spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status;
}

/** Polls `url` until it answers 2xx, or throws with `describe()` after `timeoutMs`. */
export async function waitHttp(url: string, timeoutMs: number, describe: () => string, init?: RequestInit): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    try {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms (${last})\n${describe()}`);
}

export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** User + system CPU of a process (all its threads), in microseconds. */
export function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start at state (field 3).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime (14), stime (15)
  return (ticks * 1e6) / CLK_TCK;
}

/** User + system CPU of every process behind a target (nginx: master and worker), in microseconds. */
export const cpuOf = (t: { pids(): number[] }): number => t.pids().reduce((n, pid) => n + cpuUs(pid), 0);

/** Resident set size of a process in MB (VmRSS). */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Resident set size of every process behind a target, in MB. */
export const rssOf = (t: { pids(): number[] }): number => t.pids().reduce((s, pid) => s + rssMb(pid), 0);

/** Child pids of a process (nginx's workers). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Percentile (0..100) of an ascending array; NaN when empty. */
export function pct(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const sortNum = (xs: number[]) => [...xs].sort((a, b) => a - b);

export const round = (x: number, digits = 2) => (Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : null);

/** The sum of a metric's samples in Prometheus text (every label set, or those whose line contains `filter`). */
export function metricSum(text: string, name: string, filter = ''): number {
  let n = 0;
  for (const l of text.split('\n')) {
    if ((l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && l.includes(filter)) n += Number(l.slice(l.lastIndexOf(' ') + 1));
  }
  return n;
}
