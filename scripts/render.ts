/**
 * Renders every Kubernetes object a stack would create, as YAML, without a cluster or the Pulumi CLI:
 * the program runs under Pulumi's mock runtime and each registered resource's inputs become a file.
 *
 *   npm run render -- --stack staging [--out DIR]
 *        [--config-file FILE]...        extra `config:` (a stack-file-shaped YAML) laid on top of the stack file
 *                                       (its gateway block deep-merged into the stack's; other keys replace)
 *        [--set KEY=VALUE]...           one key, `--path` style: `canary.weight=10`; VALUE is YAML
 *        [--set-secret KEY=VALUE]...    the same, marked secret
 *        [--unset KEY]...               remove a top-level key, like `pulumi config rm`
 *        [--kubeconfig FILE]            kubeconfig the program checks `cluster.context` against (default: a
 *                                       throwaway one holding just that context; render never contacts a cluster)
 *        [--as-program]                 load the program as `pulumi up` does: it runs its own render check first
 *        [--no-stack-file]              leave stacks/Pulumi.STACK.yaml out (the program's own check passes its config as a file)
 *        [--manifest FILE]              also write every registered resource (components and the provider too)
 *                                       with its provider and options (protect, retainOnDelete, ...) as JSON
 *
 * Secrets: `secure:` entries of the stack file, and secrets the stack needs but does not have, get
 * format-valid placeholders (render never needs the real secrets). Secret objects are written with
 * their values redacted, and a secret reaching any other object fails the render.
 * Every object is validated against its schema (Kubernetes, Prometheus operator, Gateway API, cert-manager)
 * and by infra/validate.ts's cross-object checks; any problem fails the render and nothing is written.
 * Writes one file per object to DIR (default out/STACK/), replacing the YAML files already there.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { parse as parseYaml, stringify } from 'yaml';
import { STRING_KEYS, SecretKind, StackConfig, mergeGatewayOverrides, parsePlainStackConfig, placeholderSecret, secretSlots, slotValue } from '../infra/config';
import { checkRendered } from '../infra/validate';
import { checkSchemas } from '../infra/validateSchemas';
import { RENDER_ENV } from '../infra/selfCheck';
import { knownStacks, printHelp, usageError, wantsHelp } from './cli';

const ROOT = resolve(__dirname, '..');
export const REDACTED = '<redacted>';

interface Args {
  stack: string;
  out: string;
  configFiles: string[];
  sets: { key: string; value: string; secret: boolean }[];
  kubeconfig?: string;
  manifest?: string;
  unset: string[];
  noStackFile: boolean;
  asProgram: boolean;
}

const USAGE =
  'usage: npm run render -- --stack NAME [--out DIR] [--config-file FILE]... [--set KEY=VALUE]... [--set-secret KEY=VALUE]... [--unset KEY]... [--kubeconfig FILE] [--manifest FILE] [--no-stack-file] [--as-program]';
const HELP = `${USAGE}

Renders every Kubernetes object the stack would create, one YAML file each, without a cluster,
the Pulumi CLI or real secrets (placeholders stand in for secrets; Secret values are redacted).

  --stack NAME          the stack (stacks/Pulumi.NAME.yaml); required
  --out DIR             where the YAML files go (default: out/NAME/)
  --config-file FILE    a stack-file-shaped YAML ({config: {...}}) laid on top of the stack file;
                        its ai-gateway:gateway block is deep-merged into the stack's (objects merge
                        key by key, lists and values replace); other keys replace the stack's
  --set KEY=VALUE       one key, \`--path\` style (canary.weight=10); VALUE is YAML
  --set-secret KEY=VALUE  the same, marked secret
  --unset KEY           remove a top-level key, like \`pulumi config rm\`
  --kubeconfig FILE     the kubeconfig the cluster.context check reads (default: a throwaway one)
  --manifest FILE       also write every registered resource with its options, as JSON
  --no-stack-file       start from an empty stack config (the --config-file and --set values only)
  --as-program          render as \`pulumi up\` would run the program (its own validation first)
  -h, --help            this help

Examples:
  npm run render -- --stack staging
  npm run render -- --stack production --out /tmp/prod --set replicas=4
`;

function usage(message: string): never {
  return usageError('render', message, USAGE);
}

function parseArgs(argv: string[]): Args {
  if (wantsHelp(argv)) printHelp(HELP);
  const args: Partial<Args> & Pick<Args, 'configFiles' | 'sets' | 'unset' | 'noStackFile' | 'asProgram'> = { configFiles: [], sets: [], unset: [], noStackFile: false, asProgram: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--no-stack-file' || flag === '--as-program') {
      if (flag === '--no-stack-file') args.noStackFile = true;
      else args.asProgram = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) usage(`${flag} needs a value`);
    if (flag === '--stack') args.stack = value;
    else if (flag === '--out') args.out = value;
    else if (flag === '--config-file') args.configFiles.push(value);
    else if (flag === '--kubeconfig') args.kubeconfig = value;
    else if (flag === '--unset') args.unset.push(value.replace(/^[^:]+:/, ''));
    else if (flag === '--manifest') args.manifest = resolve(value);
    else if (flag === '--set' || flag === '--set-secret') {
      const eq = value.indexOf('=');
      if (eq < 1) usage(`${flag} expects KEY=VALUE, got "${value}"`);
      args.sets.push({ key: value.slice(0, eq), value: value.slice(eq + 1), secret: flag === '--set-secret' });
    } else usage(`unknown option ${flag}`);
  }
  if (!args.stack) usage('--stack is required');
  const stacks = knownStacks();
  if (!stacks.includes(args.stack)) usage(`unknown stack "${args.stack}"; known stacks: ${stacks.join(', ')} (stacks/Pulumi.<name>.yaml)`);
  for (const file of args.configFiles) if (!existsSync(file)) usage(`--config-file ${file}: no such file`);
  return { ...args, stack: args.stack, out: resolve(args.out ?? join(ROOT, 'out', args.stack)) };
}

const readYaml = (file: string): unknown => parseYaml(readFileSync(file, 'utf8'));

/** Stack config (project prefix stripped) plus the paths of the values that are secret. */
interface LoadedConfig {
  values: Record<string, unknown>;
  secretPaths: Set<string>;
  /** Keys of other namespaces (kubernetes:context ...), passed through untouched. */
  foreign: Record<string, unknown>;
}

const isSecure = (v: unknown): v is { secure: string } => !!v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && 'secure' in v;

const SCALAR_KINDS: Record<string, SecretKind> = {
  redisUrl: 'redisUrl',
  redisCacheUrl: 'redisUrl',
  redisPassword: 'password',
  databaseUrl: 'databaseUrl',
  awsAccessKeyId: 'awsKeyId',
  awsSecretAccessKey: 'password',
};
const kindOf = (path: string[]): SecretKind => (path[0] === 'clientKeyHashes' || path[0] === 'adminKeyHashes' ? 'keyHash' : (SCALAR_KINDS[path[0]] ?? 'apiKey'));

/** Replaces `{secure: ...}` (ciphertext render cannot and must not decrypt) with placeholders. */
function replaceSecure(value: unknown, path: string[], secretPaths: Set<string>): unknown {
  if (isSecure(value)) {
    secretPaths.add(path.join('.'));
    return placeholderSecret({ key: path[0] as never, entry: path.length > 1 ? path.slice(1).join('.') : undefined, kind: kindOf(path) });
  }
  if (Array.isArray(value)) return value.map((v, i) => replaceSecure(v, [...path, String(i)], secretPaths));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceSecure(v, [...path, k], secretPaths)]));
  return value;
}

/** `a.b[0].c` -> ['a', 'b', '0', 'c'], like `pulumi config set --path`. */
const splitPath = (key: string) => key.split(/\.|\[(\d+)\]\.?/).filter((seg) => seg !== undefined && seg !== '');

function setPath(target: Record<string, unknown>, path: string[], value: unknown) {
  let node = target;
  path.slice(0, -1).forEach((seg, i) => {
    if (!node[seg] || typeof node[seg] !== 'object') node[seg] = /^\d+$/.test(path[i + 1]) ? [] : {};
    node = node[seg] as Record<string, unknown>;
  });
  node[path[path.length - 1]] = value;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * A later file's value for a key: the gateway block is laid on top of the earlier one (deep merge,
 * as the canary's overrides are: objects key by key, lists and values replace); other keys replace,
 * as `pulumi config set` does (a redis block of another mode must not keep the old mode's fields).
 */
function layer(key: string, before: unknown, after: unknown): unknown {
  return key === 'gateway' && isPlainObject(before) && isPlainObject(after) ? mergeGatewayOverrides(before, after) : after;
}

function loadConfig(project: string, files: string[], sets: Args['sets']): LoadedConfig {
  const loaded: LoadedConfig = { values: {}, secretPaths: new Set(), foreign: {} };
  for (const file of files) {
    const doc = (readYaml(file) ?? {}) as { config?: Record<string, unknown> };
    for (const [fullKey, raw] of Object.entries(doc.config ?? {})) {
      const [ns, key] = fullKey.includes(':') ? [fullKey.slice(0, fullKey.indexOf(':')), fullKey.slice(fullKey.indexOf(':') + 1)] : [project, fullKey];
      if (ns !== project) loaded.foreign[fullKey] = raw;
      else loaded.values[key] = layer(key, loaded.values[key], replaceSecure(raw, [key], loaded.secretPaths));
    }
  }
  for (const s of sets) {
    const path = splitPath(s.key.replace(new RegExp(`^${project}:`), ''));
    setPath(loaded.values, path, path.length === 1 && STRING_KEYS.has(path[0]) ? s.value : parseYaml(s.value));
    if (s.secret) loaded.secretPaths.add(path.join('.'));
  }
  return loaded;
}

/** Fills placeholders for secrets the stack needs but does not hold (a fresh checkout has none). */
function fillMissingSecrets(loaded: LoadedConfig): string[] {
  let stack: StackConfig;
  try {
    stack = parsePlainStackConfig(loaded.values);
  } catch {
    return []; // the program reports the problems, naming the keys
  }
  const filled: string[] = [];
  for (const slot of secretSlots(stack)) {
    if (slotValue(stack, slot) !== undefined) continue;
    const path = slot.entry === undefined ? [slot.key] : [slot.key, slot.entry];
    setPath(loaded.values, path, placeholderSecret(slot));
    loaded.secretPaths.add(path.join('.'));
    filled.push(path.join('.'));
  }
  return filled;
}

// ---------------------------------------------------------------- secrets in rendered objects

const SIG = pulumi.runtime.specialSigKey;
const isWrappedSecret = (v: unknown): v is { value: unknown } => !!v && typeof v === 'object' && (v as Record<string, unknown>)[SIG] === pulumi.runtime.specialSecretSig;

/** Unwraps secret markers, recording where they were. */
function unwrap(value: unknown, path: string, found: string[]): unknown {
  if (isWrappedSecret(value)) {
    found.push(path);
    return unwrap(value.value, path, found);
  }
  if (Array.isArray(value)) return value.map((v, i) => unwrap(v, `${path}[${i}]`, found));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrap(v, path ? `${path}.${k}` : k, found)]));
  return value;
}

interface Rendered {
  type: string;
  object: Record<string, unknown>;
}

const redactValues = (m: unknown) => (m && typeof m === 'object' ? Object.fromEntries(Object.keys(m).map((k) => [k, REDACTED])) : m);

/** A Kubernetes object from a registered resource; Secret values redacted; any other secret is an error. */
function toObject(type: string, name: string, inputs: Record<string, unknown>): Rendered {
  const found: string[] = [];
  const object = unwrap(inputs, '', found) as Record<string, unknown>;
  if (object.kind === 'Secret') {
    if (object.data) object.data = redactValues(object.data);
    if (object.stringData) object.stringData = redactValues(object.stringData);
  } else if (found.length) {
    throw new Error(`secret value reaches ${type} "${name}" at ${found.join(', ')}: only Secret objects may hold secrets`);
  }
  return { type, object };
}

const fileName = (o: Record<string, unknown>, used: Set<string>) => {
  const meta = (o.metadata ?? {}) as { name?: string; namespace?: string };
  const base = [o.kind, meta.name ?? 'unnamed']
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-');
  let name = `${base}.yaml`;
  for (let i = 2; used.has(name); i++) name = `${base}-${i}.yaml`;
  used.add(name);
  return name;
};

function writeObjects(out: string, rendered: Rendered[]): string[] {
  mkdirSync(out, { recursive: true });
  for (const f of readdirSync(out)) if (f.endsWith('.yaml')) rmSync(join(out, f));
  const used = new Set<string>();
  return rendered.map(({ object }) => {
    const file = fileName(object, used);
    // YAML 1.1 output quotes off/no/yes, which kubectl's parser would otherwise read as booleans.
    writeFileSync(join(out, file), stringify(object, { lineWidth: 0, version: '1.1' }));
    return file;
  });
}

// ---------------------------------------------------------------- cluster and manifest

/**
 * Points `cluster.kubeconfig` at the given file, or at a throwaway kubeconfig holding only the stack's
 * context (render never talks to a cluster), so the program's context check runs as in `pulumi up`.
 */
function useKubeconfig(values: Record<string, unknown>, file: string | undefined): string | undefined {
  const cluster = values.cluster as { context?: unknown } | undefined;
  if (!cluster || typeof cluster !== 'object' || typeof cluster.context !== 'string') return undefined;
  let path = file;
  let dir: string | undefined;
  if (!path) {
    dir = mkdtempSync(join(tmpdir(), 'aigw-render-kube-'));
    path = join(dir, 'config');
    const kubeconfig = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'render', cluster: { server: 'https://render.invalid' } }],
      users: [{ name: 'render', user: {} }],
      contexts: [{ name: cluster.context, context: { cluster: 'render', user: 'render' } }],
    };
    writeFileSync(path, stringify(kubeconfig));
  }
  values.cluster = { ...cluster, kubeconfig: path };
  return dir;
}

/** One registered resource as the engine would receive it: its provider and options, which the mocks do not pass on. */
export interface ManifestEntry {
  type: string;
  name: string;
  custom: boolean;
  parent: string;
  provider: string;
  protect: boolean;
  retainOnDelete: boolean;
  deleteBeforeReplace: boolean;
  metadataName?: string;
  providerInputs?: Record<string, unknown>;
  inputs?: Record<string, unknown>;
}

const redactSecrets = (value: unknown): unknown => {
  if (isWrappedSecret(value)) return '<secret>';
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactSecrets(v)]));
  return value;
};

/** Wraps the mock monitor's registerResource to record each request's options. */
function recordRegistrations(entries: ManifestEntry[]) {
  const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: any, cb: unknown): unknown };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req: any, cb: unknown) => {
    const inputs = req.getObject()?.toJavaScript() as { metadata?: { name?: unknown } } | undefined;
    entries.push({
      type: req.getType(),
      name: req.getName(),
      custom: req.getCustom(),
      parent: req.getParent(),
      provider: req.getProvider(),
      protect: req.getProtect() === true,
      retainOnDelete: req.getRetainondelete() === true,
      deleteBeforeReplace: req.getDeletebeforereplace() === true,
      ...(typeof inputs?.metadata?.name === 'string' ? { metadataName: inputs.metadata.name } : {}),
      // A provider's settings (context, kubeconfig, mutability flags) hold no secret here.
      ...(String(req.getType()).startsWith('pulumi:providers:') ? { providerInputs: inputs } : {}),
      // Other resources (the image build): inputs with every secret value replaced by "<secret>".
      ...(req.getCustom() && !String(req.getType()).startsWith('kubernetes:') && !String(req.getType()).startsWith('pulumi:') ? { inputs: redactSecrets(inputs) as Record<string, unknown> } : {}),
    });
    return register(req, cb);
  };
}

// ---------------------------------------------------------------- main

function fail(err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`render: ${message}\n`);
  process.exit(1);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const project = readYaml(join(ROOT, 'Pulumi.yaml')) as { name: string; stackConfigDir?: string };
  const stackFile = join(ROOT, project.stackConfigDir ?? '.', `Pulumi.${args.stack}.yaml`);
  const loaded = loadConfig(project.name, [...(args.noStackFile ? [] : [stackFile]), ...args.configFiles], args.sets);
  for (const key of args.unset) delete loaded.values[key];
  const filled = fillMissingSecrets(loaded);
  const kubeDir = useKubeconfig(loaded.values, args.kubeconfig);
  if (kubeDir) process.once('exit', () => rmSync(kubeDir, { recursive: true, force: true }));

  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(loaded.foreign)) flat[k] = typeof v === 'string' ? v : JSON.stringify(v);
  for (const [k, v] of Object.entries(loaded.values)) flat[`${project.name}:${k}`] = typeof v === 'string' ? v : JSON.stringify(v);
  const secretKeys = [...new Set([...loaded.secretPaths].map((p) => `${project.name}:${p.split('.')[0]}`))];
  pulumi.runtime.setAllConfig(flat, secretKeys);

  const rendered: Rendered[] = [];
  let failed = false;
  const onError = (err: unknown) => {
    failed = true;
    fail(err);
  };
  process.on('unhandledRejection', onError);
  process.on('uncaughtException', onError);
  await pulumi.runtime.setMocks(
    {
      newResource: (r) => {
        try {
          if (r.type.startsWith('kubernetes:')) rendered.push(toObject(r.type, r.name, r.inputs));
        } catch (err) {
          onError(err);
        }
        // The image build is never run here: it "pushes" a digest derived from its tags.
        if (r.type === 'docker-build:index:Image') return { id: `${r.name}-id`, state: { ...r.inputs, digest: `sha256:${createHash('sha256').update(JSON.stringify(r.inputs.tags)).digest('hex')}` } };
        return { id: `${r.name}-id`, state: r.inputs };
      },
      call: (c) => c.inputs,
    },
    project.name,
    args.stack,
  );
  const manifest: ManifestEntry[] = [];
  recordRegistrations(manifest);
  // A failed render still leaves the manifest: what was registered before the failure (tests read it).
  if (args.manifest) process.once('exit', (code) => code !== 0 && writeFileSync(args.manifest!, JSON.stringify(manifest, null, 2)));

  // The program skips its own render check (infra/selfCheck.ts) here: this process is that check.
  if (args.asProgram) delete process.env[RENDER_ENV];
  else process.env[RENDER_ENV] ??= '1';
  try {
    require('../infra');
  } catch (err) {
    fail(err);
  }
  // The program registers resources asynchronously; when the event loop is empty, all are in.
  process.once('beforeExit', () => {
    if (failed) return;
    validate(rendered, loaded).then(() => write(), fail);
  });
  const write = () => {
    const files = writeObjects(args.out, rendered);
    if (args.manifest) writeFileSync(args.manifest, JSON.stringify(manifest, null, 2));
    const note = filled.length ? ` (placeholders for secrets not set: ${filled.join(', ')})` : '';
    process.stdout.write(`render: ${files.length} objects for stack ${args.stack} written to ${args.out}${note}\n`);
  };
}

/** Schemas (Kubernetes, Prometheus operator, Gateway API, cert-manager) and the checks they miss; throws listing every problem. */
async function validate(rendered: Rendered[], loaded: LoadedConfig) {
  const objects = rendered.map((r) => r.object);
  const problems = [...(await checkSchemas(objects)), ...checkRendered(objects, parsePlainStackConfig(loaded.values))];
  if (problems.length) throw new Error(`rendered objects failed validation, nothing written:\n  - ${problems.join('\n  - ')}`);
}

main().catch(fail);
