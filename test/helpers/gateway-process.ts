/**
 * Runs the real gateway process (service/main.ts) on a config written to a temp file, on free
 * 127.0.0.1 ports, for tests that need several replicas or real signals.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { GatewayConfigInput } from '../../service/config/schema';
import { freePort } from './ports';
import { testTempDir } from './temp-dirs';

export interface GatewayProcess {
  url: string;
  metricsUrl: string;
  proc: ChildProcess;
  output: () => string;
  /** Resolves when the process exits, with its exit code or the signal that ended it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** `readyTimeoutMs`: how long to wait for /ready (default 20 s; more for several processes starting at once on a busy machine). */
export async function startGatewayProcess(
  config: Omit<GatewayConfigInput, 'server'> & { server?: GatewayConfigInput['server'] },
  env: NodeJS.ProcessEnv = {},
  opts: { readyTimeoutMs?: number } = {},
): Promise<GatewayProcess> {
  const port = await freePort();
  const metricsPort = await freePort();
  const dir = testTempDir('aigw-proc-');
  const file = join(dir, 'gateway.yaml');
  writeFileSync(file, stringify({ ...config, server: { host: '127.0.0.1', log_level: 'warn', ...config.server, port, metrics_port: metricsPort } }));
  const proc = spawn(process.execPath, ['--import', 'tsx', join(__dirname, '../../service/main.ts'), '--config', file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 20_000);
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`gateway process exited with ${proc.exitCode}:\n${out}`);
    try {
      if ((await fetch(`${url}/ready`)).status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`gateway process did not become ready:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    proc,
    output: () => out,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null) proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      const { code } = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
