/** Renders stacks in child processes (the Pulumi mock runtime is process-global) and reads the YAML back. */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

export const ROOT = resolve(__dirname, '..', '..');

// Loose shapes for reading rendered objects in assertions.
export type Obj = Record<string, any>;

export interface RenderResult {
  code: number;
  stdout: string;
  stderr: string;
  /** File name -> raw text, exactly as written. */
  files: Map<string, string>;
  objects: Obj[];
}

const dirs: string[] = [];

export function render(stack: string, ...extra: string[]): Promise<RenderResult> {
  const out = mkdtempSync(join(tmpdir(), `aigw-render-${stack}-`));
  dirs.push(out);
  return new Promise((done) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', 'render.ts'), '--stack', stack, '--out', out, ...extra], { cwd: ROOT, timeout: 240_000 }, (err, stdout, stderr) => {
      const files = new Map<string, string>();
      for (const f of readdirSync(out)) files.set(f, readFileSync(join(out, f), 'utf8'));
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      done({ code, stdout, stderr, files, objects: [...files.values()].map((t) => parseYaml(t, { version: '1.1' }) as Obj) });
    });
  });
}

export function cleanup() {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export const ofKind = (r: RenderResult, kind: string) => r.objects.filter((o) => o.kind === kind);

export function one(r: RenderResult, kind: string, name: string): Obj {
  const found = r.objects.find((o) => o.kind === kind && o.metadata?.name === name);
  if (!found) throw new Error(`no ${kind} ${name} among ${r.objects.map((o) => `${o.kind}/${o.metadata?.name}`).join(', ')}`);
  return found;
}

/** A content-named object (`<base>-<10 hex>`, infra/contentName.ts): exactly one must exist. */
export function named(r: RenderResult, kind: string, base: string): Obj {
  const found = r.objects.filter((o) => o.kind === kind && new RegExp(`^${base}-[0-9a-f]{10}$`).test(o.metadata?.name ?? ''));
  if (found.length !== 1) throw new Error(`${found.length} ${kind} named ${base}-<hash> among ${r.objects.map((o) => `${o.kind}/${o.metadata?.name}`).join(', ')}`);
  return found[0];
}

/** Pod templates of every workload kind (a CronJob's through its jobTemplate), with the owning object. */
export function podTemplates(r: RenderResult): { owner: Obj; template: Obj }[] {
  return r.objects
    .filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob'].includes(o.kind))
    .map((owner) => ({ owner, template: owner.kind === 'CronJob' ? owner.spec.jobTemplate.spec.template : owner.spec.template }));
}

/** Schema models and selector matching: the same code `npm run render` validates with. */
export { modelFor } from '../../infra/validateSchemas';
export { selects } from '../../infra/validate';
