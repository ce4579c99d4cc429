/**
 * The render's validation, run by the program itself before it registers a resource (issue 23,
 * point 6): `pulumi up` stops on any object that fails its schema (Kubernetes, Prometheus operator,
 * Gateway API, cert-manager) or the cross-object checks (infra/validate.ts), exactly as
 * `npm run render` does, because it runs the very same renderer.
 *
 * How: the program writes its own plain config (every `ai-gateway:*` key except the secrets, which
 * the renderer replaces with format-valid placeholders) to a private temporary file and runs
 * `scripts/render.ts --no-stack-file --config-file FILE` in a child process under Pulumi's mock
 * runtime (process-global, so it cannot share this process). No secret is written or passed; the
 * child contacts no cluster (it checks `cluster.context` against a throwaway kubeconfig).
 * The renderer marks its own process (RENDER_ENV), so the program it loads does not recurse.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';

/** Set by scripts/render.ts in its own process: the program is being rendered, not deployed. */
export const RENDER_ENV = 'AI_GATEWAY_RENDERING';

/** Top-level keys holding secrets: never handed to the child (it fills placeholders). */
export const SECRET_KEYS = [
  'providerApiKeys',
  'clientKeyHashes',
  'adminKeyHashes',
  'redisPassword',
  'redisUrl',
  'redisCacheUrl',
  'databaseUrl',
  'awsAccessKeyId',
  'awsSecretAccessKey',
  'registryPassword',
  'smokeProbeKey',
];

const ROOT = resolve(__dirname, '..');

/** The stack's plain config as a stack-file document (JSON values parsed, secrets left out). */
export function plainConfigDocument(all: Record<string, string>, project: string): { config: Record<string, unknown> } {
  const config: Record<string, unknown> = {};
  for (const [fullKey, value] of Object.entries(all)) {
    if (!fullKey.startsWith(`${project}:`)) continue;
    const key = fullKey.slice(project.length + 1);
    if (SECRET_KEYS.includes(key) || key === 'cluster') continue;
    try {
      config[fullKey] = JSON.parse(value);
    } catch {
      config[fullKey] = value;
    }
  }
  // Only the context: the child checks it against a throwaway kubeconfig, never the real one.
  const cluster = all[`${project}:cluster`];
  if (cluster) config[`${project}:cluster`] = { context: (JSON.parse(cluster) as { context?: string }).context };
  return { config };
}

/** Runs the renderer's validation on this config; returns its problems (empty when the render is valid). */
export function renderCheck(stack: string, all: Record<string, string>, project: string): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'aigw-selfcheck-'));
  try {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, stringify(plainConfigDocument(all, project)), { mode: 0o600 });
    // The child reads its config from the file only, not from the engine's variables of this process.
    const env: NodeJS.ProcessEnv = { ...process.env, [RENDER_ENV]: '1' };
    delete env.PULUMI_CONFIG;
    delete env.PULUMI_CONFIG_SECRET_KEYS;
    const res = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'render.ts'), '--stack', stack, '--no-stack-file', '--config-file', file, '--out', join(dir, 'out')], {
      cwd: ROOT,
      encoding: 'utf8',
      env,
    });
    if (res.error) return `the render check could not run: ${res.error.message}`;
    return res.status === 0 ? undefined : (res.stderr || res.stdout).replace(/^render: /, '').trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
