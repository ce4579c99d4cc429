/**
 * The docs cannot drift: every fenced block of the README and the task pages (test/docs/snippets.ts
 * PAGES) is run or checked.
 * - YAML: parsed by the gateway's own config parser, each page's blocks laid on top of each other.
 * - Shell: safe commands run (keygen, render, --help, curl against config/quickstart.yaml served by a
 *   real gateway process in front of a fake OpenAI); the rest are checked (npm scripts exist, files
 *   exist, flags are in the script's --help, pulumi lines name a known stack and secret, the docker
 *   lines match the Dockerfile and the config's variables). An unknown command fails the test.
 * - TypeScript: the README's openai SDK snippet runs against that gateway; Python: parsed.
 * - Output samples (`text`): the ones that quote a gateway error are compared with the real error.
 * Blocks a page marks `<!-- docs-test: not-runnable: REASON -->` are listed here, by file and first
 * line, so a new one is a deliberate change; their commands are still checked.
 */
import assert from 'node:assert/strict';
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { parseConfigText } from '../../service/config/load';
import { ConfigError } from '../../service/config/schema';
import { hashKey } from '../../service/tenancy/keys';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { freePort } from '../helpers/ports';
import { Block, blocks, commands, PAGES, ROOT, words } from './snippets';
import { testTempDir } from '../helpers/temp-dirs';

const NOT_RUNNABLE = [
  'docs/quickstart.md: export OPENAI_API_KEY=sk-...',
  'docs/add-a-team-or-key.md: pulumi config set --stack production --secret --path',
  'docs/providers.md: export AWS_ACCESS_KEY_ID=AKIA...',
  'docs/canary-and-rollback.md: pulumi config set --stack production --path canary.image',
  'docs/canary-and-rollback.md: pulumi config set --stack production --path canary.weight 0',
  'docs/rotate-a-secret.md: pulumi config set --stack production --secret --path',
  'docs/rotate-a-secret.md: npm run smoke -- --url "$(pulumi stack output publicUrl --stack production)"',
  'docs/rotate-a-secret.md: pulumi config set --stack production --secret redisPassword',
  'docs/upgrade.md: pulumi config set --stack staging image',
];
const LANGS = new Set(['sh', 'yaml', 'ts', 'python', 'text']);
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
const STACKS = ['production', 'staging'];
const SECRET_KEYS = ['providerApiKeys', 'clientKeyHashes', 'adminKeyHashes', 'redisPassword', 'redisUrl', 'registryPassword', 'smokeProbeKey'];
const CLIENT_KEY = 'sk-gw-docs-quickstart-client';
const ADMIN_KEY = 'sk-gw-docs-quickstart-admin';

const ALL = PAGES.flatMap(blocks);
/** Pages the docs link to that other branches write in parallel (the key store's page, issue 24). */
const PENDING: string[] = [];
const where = (b: Block) => `${b.file}:${b.line}`;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return new Promise((resolve) => {
    // code: the exit code, or (for a program that is not installed) the spawn error's code, ENOENT.
    execFile(file, args, { cwd: ROOT, timeout: 120_000, env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}
const runScript = (script: string, args: string[]) => run(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts', `${script}.ts`), ...args]);

const helpCache = new Map<string, Promise<Ran>>();
const helpOf = (script: string) => {
  if (!helpCache.has(script)) helpCache.set(script, runScript(script, ['--help']));
  return helpCache.get(script)!;
};

/** Objects merge key by key; lists add up (a page's blocks build one config). */
function merge(a: unknown, b: unknown): unknown {
  if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
    for (const [k, v] of Object.entries(b)) out[k] = k in out ? merge(out[k], v) : v;
    return out;
  }
  return b;
}

/** A value for each ${VAR} a snippet names: a key hash for *_HASH, a URL for *_URL, else a dummy secret. */
function envFor(text: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [, name] of text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g))
    env[name] = name.endsWith('_HASH') ? hashKey(name) : name.endsWith('_URL') ? 'http://127.0.0.1:9/v1' : `dummy-${name.toLowerCase()}`;
  return env;
}

/** Parses a page's YAML blocks laid on top of each other (plus a provider and auth "none" when they give none). */
function parsePageConfig(yamlBlocks: Block[]): void {
  let doc: Record<string, unknown> = {};
  for (const b of yamlBlocks) {
    const part = parseYaml(b.text) as Record<string, unknown>;
    assert.ok(part && typeof part === 'object' && !('config' in part), `${where(b)}: a gateway config snippet`);
    doc = merge(doc, part) as Record<string, unknown>;
    const full = { ...doc } as Record<string, any>;
    if (!full.providers) full.providers = [{ name: 'base', base_url: 'http://127.0.0.1:9/v1', api_key: 'x', models: [{ name: 'base-model', input_per_million: 1, output_per_million: 2 }] }];
    if (!full.auth?.keys) full.auth = { ...full.auth, mode: 'none' };
    const text = stringify(full);
    try {
      parseConfigText(text, envFor(text));
    } catch (err) {
      assert.fail(`${where(b)}: the gateway refuses this config (with the page's blocks before it):\n${(err as Error).message}`);
    }
  }
}

describe('docs: every command and config snippet of the README and the task pages', function () {
  this.timeout(300_000);
  const tmp = testTempDir('aigw-docs-');
  let upstream: FakeUpstream;
  let gateway: ChildProcess;
  let gatewayUrl: string;
  let gatewayOut = '';

  before(async () => {
    upstream = await startFakeUpstream('openai');
    const [port, metricsPort] = [await freePort(), await freePort()];
    // The quickstart's own file, with free ports instead of 8080/9090 (other things may hold those).
    const text = readFileSync(join(ROOT, 'config/quickstart.yaml'), 'utf8')
      .replace(/^ {2}port: 8080$/m, `  port: ${port}`)
      .replace(/^ {2}metrics_port: 9090$/m, `  metrics_port: ${metricsPort}`);
    assert.ok(text.includes(`port: ${port}`) && text.includes(`metrics_port: ${metricsPort}`), 'config/quickstart.yaml has port 8080 and metrics_port 9090, as the docs say');
    writeFileSync(join(tmp, 'quickstart.yaml'), text);
    const env = { OPENAI_API_KEY: 'sk-docs-test-provider', OPENAI_BASE_URL: upstream.url, GATEWAY_KEY_HASH: hashKey(CLIENT_KEY), GATEWAY_ADMIN_KEY_HASH: hashKey(ADMIN_KEY) };
    gateway = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'service/main.ts'), '--config', join(tmp, 'quickstart.yaml')], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    gateway.stdout!.on('data', (d) => (gatewayOut += d));
    gateway.stderr!.on('data', (d) => (gatewayOut += d));
    gatewayUrl = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      if (gateway.exitCode !== null) throw new Error(`the quickstart gateway exited:\n${gatewayOut}`);
      if (
        await fetch(`${gatewayUrl}/ready`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      if (i > 300) throw new Error(`the quickstart gateway did not become ready:\n${gatewayOut}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  after(async () => {
    gateway?.kill('SIGTERM');
    await upstream?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('every block has a language this test handles', () => {
    assert.ok(ALL.length > 30, `found ${ALL.length} blocks`);
    assert.deepEqual(ALL.filter((b) => !LANGS.has(b.lang)).map(where), []);
  });

  it('lists the blocks marked not runnable, each with its reason', () => {
    const marked = ALL.filter((b) => b.notRunnable);
    for (const b of marked) console.log(`      not runnable: ${where(b)} (${b.notRunnable})`);
    const ids = marked.map((b) => `${b.file}: ${commands(b.text)[0]}`);
    assert.equal(ids.length, NOT_RUNNABLE.length, ids.join('\n'));
    NOT_RUNNABLE.forEach((id, i) => assert.ok(ids[i].startsWith(id), `${ids[i]}\n  expected to start with\n${id}`));
  });

  for (const page of PAGES) {
    const yamlBlocks = ALL.filter((b) => b.file === page && b.lang === 'yaml');
    if (yamlBlocks.length) {
      it(`${page}: its ${yamlBlocks.length} YAML block(s) are accepted by the gateway's config parser`, () => parsePageConfig(yamlBlocks));
    }
  }

  it('shell blocks: every command is checked (npm scripts, files, flags in --help, stacks, secrets, docker)', async () => {
    for (const page of PAGES) {
      const pageText = readFileSync(join(ROOT, page), 'utf8');
      const built: string[] = [];
      for (const b of ALL.filter((x) => x.file === page && x.lang === 'sh')) {
        for (const cmd of commands(b.text)) await checkCommand(cmd, b, pageText, built);
      }
    }
  });

  it('shell blocks: the safe commands run (keygen, render, --help, diff, curl against the quickstart gateway)', async () => {
    const outs = new Map<string, string>();
    let ran = 0;
    for (const b of ALL.filter((x) => x.lang === 'sh' && !x.notRunnable)) {
      for (const cmd of commands(b.text)) {
        const w = words(cmd);
        const script = w[0] === 'npm' && w[1] === 'run' ? w[2] : undefined;
        const args = w.slice(4);
        if (script === 'keygen' || (script && args.includes('--help'))) {
          const r = await runScript(script, args);
          assert.equal(r.code, 0, `${where(b)}: ${cmd}\n${r.stderr}`);
        } else if (script === 'render') {
          const i = args.indexOf('--out');
          const out = join(tmp, `render-${ran}`);
          if (i >= 0) outs.set(args[i + 1], out);
          const r = await runScript('render', i >= 0 ? [...args.slice(0, i), '--out', out, ...args.slice(i + 2)] : [...args, '--out', out]);
          assert.equal(r.code, 0, `${where(b)}: ${cmd}\n${r.stderr}`);
        } else if (w[0] === 'diff') {
          const r = await run('diff', ['-r', outs.get(w[2])!, outs.get(w[3])!]);
          assert.ok(r.code === 0 || r.code === 1, `${where(b)}: ${cmd}\n${r.stderr}`);
          if (cmd.includes('image=')) assert.ok(/image/.test(r.stdout), r.stdout);
        } else if (w[0] === 'curl') {
          const r = await run('bash', ['-c', cmd.replaceAll('http://127.0.0.1:8080', gatewayUrl)], { GATEWAY_KEY: CLIENT_KEY, ADMIN_KEY });
          assert.equal(r.code, 0, `${where(b)}: ${cmd}\n${r.stderr}`);
          const body = JSON.parse(r.stdout) as { error?: unknown };
          assert.equal(body.error, undefined, `${where(b)}: ${cmd}\n${r.stdout}`);
        } else continue;
        ran++;
      }
    }
    assert.ok(ran >= 12, `ran ${ran} commands`);
    assert.ok(
      upstream.received.some((r) => r.path.endsWith('/chat/completions')),
      'the first request reached the provider',
    );
  });

  it('README: the openai SDK snippet runs against the quickstart gateway; the Python one parses', async () => {
    const ts = ALL.filter((b) => b.file === 'README.md' && b.lang === 'ts');
    assert.equal(ts.length, 1);
    const file = join(ROOT, 'test/docs', `.readme-snippet-${process.pid}.mts`);
    writeFileSync(file, ts[0].text);
    try {
      const r = await run(process.execPath, ['--import', 'tsx', file], { GATEWAY_URL: `${gatewayUrl}/v1`, GATEWAY_KEY: CLIENT_KEY });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /\S/, 'it prints the answer');
    } finally {
      rmSync(file, { force: true });
    }
    const py = ALL.filter((b) => b.file === 'README.md' && b.lang === 'python');
    assert.equal(py.length, 1);
    const parsed = await run('python3', ['-c', 'import ast, sys; ast.parse(open(sys.argv[1]).read())', writeTmp(tmp, 'snippet.py', py[0].text)]);
    if ((parsed.code as unknown) === 'ENOENT') console.log('      python3 not found: the Python snippet is not parsed');
    else assert.equal(parsed.code, 0, parsed.stderr);
  });

  it('quickstart: the error quoted for missing variables is what the gateway prints', async () => {
    const [sample] = ALL.filter((b) => b.file === 'docs/quickstart.md' && b.lang === 'text');
    const env = { ...process.env, GATEWAY_ADMIN_KEY_HASH: hashKey('x'), GATEWAY_KEY_HASH: '', OPENAI_API_KEY: '' };
    const r = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'service/main.ts'), '--config', join(ROOT, 'config/quickstart.yaml')], env);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), sample.text.trim());
  });

  it("add a team or a key: the error quoted for a key's undeclared team is the parser's", () => {
    const [sample] = ALL.filter((b) => b.file === 'docs/add-a-team-or-key.md' && b.lang === 'text');
    const cfg = {
      teams: [{ name: 'support' }],
      auth: { keys: [{ hash: hashKey('k'), name: 'search-backend', team: 'search' }] },
      providers: [{ name: 'p', base_url: 'http://127.0.0.1:9/v1', api_key: 'x', models: [{ name: 'm', input_per_million: 1, output_per_million: 2 }] }],
    };
    assert.throws(
      () => parseConfigText(stringify(cfg)),
      (err: ConfigError) => err.problems.includes(sample.text.trim()),
    );
  });

  it('links between the pages point at files and headings that exist', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const page of [...PAGES, 'docs/reference.md', 'docs/internals.md', 'docs/benchmark-history.md']) {
      const text = readFileSync(join(ROOT, page), 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^(https?:|mailto:)/.test(target)) continue;
        const [path, anchor] = target.split('#');
        const file = path ? join(ROOT, dirname(page), path) : join(ROOT, page);
        if (PENDING.includes(relative(ROOT, file))) continue;
        checked++;
        if (!existsSync(file)) broken.push(`${page}: ${target} (no such file)`);
        else if (anchor && file.endsWith('.md') && !slugs(readFileSync(file, 'utf8')).has(anchor)) broken.push(`${page}: ${target} (no such heading)`);
      }
    }
    assert.deepEqual(broken, []);
    assert.ok(checked > 40, `${checked} links checked`);
    assert.ok(slugs('## Traces (OpenTelemetry)\n').has('traces-opentelemetry'));
  });

  it('README: under 1,500 words, the two set-up commands first', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const count = readme.split(/\s+/).filter(Boolean).length;
    assert.ok(count < 1500, `${count} words`);
    assert.equal(ALL.find((b) => b.file === 'README.md')!.text, 'npm ci && npm run demo\nnpm test');
  });

  it('the checks fail on a wrong command or config (they are not vacuous)', async () => {
    const fake = (text: string, lang = 'sh'): Block => ({ file: 'docs/fake.md', line: 1, lang, text });
    const bad = [
      'npm run nosuch',
      'npm run keygen -- --bogus x',
      'npm run dev -- --config config/missing.yaml',
      "pulumi config set --stack nope --secret --path 'clientKeyHashes.x' y",
      "pulumi config set --stack staging --secret --path 'nosuchKey.x' y",
      'rm -rf /tmp/x',
      'export X=1',
    ];
    for (const cmd of bad) await assert.rejects(checkCommand(cmd, fake(cmd), '', []), assert.AssertionError, cmd);
    await assert.rejects(checkCommand('docker run --rm ai-gateway:other', fake(''), '', ['ai-gateway:local']), assert.AssertionError);
    assert.throws(() => parsePageConfig([fake('providers:\n  - { name: x, base_url: not-a-url, api_key: k, models: [{ name: m }] }', 'yaml')]), assert.AssertionError);
    assert.throws(() => parsePageConfig([fake('teams: [{ name: a }]\nauth: { keys: [{ hash: "${H_HASH}", name: k, team: b }] }', 'yaml')]), /unknown team "b"/);
  });

  /** Static checks of one command; `built` collects the docker image tags the page builds. */
  async function checkCommand(cmd: string, b: Block, pageText: string, built: string[]): Promise<void> {
    const w = words(cmd);
    const at = `${where(b)}: ${cmd}`;
    if (w[0] === 'npm') {
      if (w[1] === 'ci' || w[1] === 'test') return void assert.ok(w.length === 2 || w[2] === '--', at);
      assert.equal(w[1], 'run', at);
      assert.ok(PKG.scripts[w[2]], `${at}: no npm script "${w[2]}"`);
      const args = w.slice(3);
      if (args.length) assert.equal(args[0], '--', `${at}: arguments go after --`);
      if (w[2] === 'dev' || w[2] === 'start') {
        assert.deepEqual(args.slice(1, 2), ['--config'], at);
        return void assert.ok(existsSync(join(ROOT, args[2])), `${at}: no file ${args[2]}`);
      }
      if (args.length > 1) {
        const help = await helpOf(w[2]);
        assert.equal(help.code, 0, `${w[2]} --help`);
        for (const flag of args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0])) assert.ok(help.stdout.includes(flag), `${at}: ${flag} is not in npm run ${w[2]} -- --help`);
      }
      return;
    }
    if (w[0] === 'pulumi') {
      const stack = w[w.indexOf('--stack') + 1];
      assert.ok(w.includes('--stack') && STACKS.includes(stack), `${at}: names no known stack`);
      if (w[1] === 'config' && w[2] === 'set' && w.includes('--secret')) {
        const key = w.includes('--path') ? w[w.indexOf('--path') + 1].split('.')[0] : w.find((x, i) => i > 2 && !x.startsWith('--') && w[i - 1] !== '--stack');
        assert.ok(SECRET_KEYS.includes(key!), `${at}: ${key} is not a secret the stack reads (${SECRET_KEYS.join(', ')})`);
      }
      return;
    }
    if (w[0] === 'export') {
      assert.ok(b.notRunnable, `${at}: an export with a placeholder belongs in a not-runnable block`);
      const name = w[1].split('=')[0];
      const rest = pageText.replace(b.text, '') + readFileSync(join(ROOT, 'config/quickstart.yaml'), 'utf8') + serviceSource();
      return void assert.ok(rest.includes(name), `${at}: ${name} is used nowhere else (not in the page, the quickstart config or service/)`);
    }
    if (w[0] === 'docker') return checkDocker(w, at, built);
    if (w[0] === 'curl') return void assert.match(cmd, /http:\/\/127\.0\.0\.1:8080\/v1\//, `${at}: curl the local gateway`);
    if (w[0] === 'diff') return void assert.ok(w[1] === '-r' && w.length === 4, at);
    assert.fail(`${at}: a command this test does not know; check it here or mark the block not runnable`);
  }
});

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes. */
function slugs(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const [, title] of markdown.replace(/```[\s\S]*?```/g, '').matchAll(/^#{1,6} (.+)$/gm)) {
    out.add(
      title
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, '')
        .replace(/ /g, '-'),
    );
  }
  return out;
}

/** Every TypeScript file of service/, concatenated (where the gateway reads its environment). */
function serviceSource(): string {
  return readdirSync(join(ROOT, 'service'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => readFileSync(join(ROOT, 'service', f), 'utf8'))
    .join('\n');
}

function writeTmp(dir: string, name: string, text: string): string {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
}

/** `docker build -t TAG .` and `docker run` of that tag with the config where the Dockerfile's CMD reads it. */
function checkDocker(w: string[], at: string, built: string[]): void {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  if (w[1] === 'build') {
    assert.equal(w[w.length - 1], '.', at);
    built.push(w[w.indexOf('-t') + 1]);
    return;
  }
  assert.equal(w[1], 'run', at);
  assert.ok(built.includes(w[w.length - 1]), `${at}: runs an image the page did not build`);
  const cmdConfig = /"--config", "([^"]+)"\]/.exec(dockerfile)?.[1];
  const mount = w[w.indexOf('-v') + 1].replace('$PWD/', '').split(':');
  assert.ok(existsSync(join(ROOT, mount[0])), `${at}: no file ${mount[0]}`);
  assert.equal(mount[1], cmdConfig, `${at}: the Dockerfile's CMD reads ${cmdConfig}`);
  const passed = w.flatMap((x, i) => (w[i - 1] === '-e' ? [x.split('=')[0]] : []));
  const needed = [...readFileSync(join(ROOT, mount[0]), 'utf8').matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]);
  assert.deepEqual(
    needed.filter((n) => !passed.includes(n)),
    [],
    `${at}: passes every variable ${mount[0]} needs`,
  );
  assert.ok(w.includes('HOST=0.0.0.0'), `${at}: listens beyond the container's loopback`);
  assert.ok(w.includes('8080:8080') && /EXPOSE 8080/.test(dockerfile), at);
}
