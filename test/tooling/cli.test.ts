/**
 * The scripts' command lines (keygen, render, smoke, demo): --help prints the usage and exits 0, a
 * usage error says what is wrong in one line and exits 2 without a stack trace; keygen's names follow
 * the gateway's rule and its output is what the gateway and the stack accept; render refuses an
 * unknown stack naming the known ones, and lays --config-file's gateway block on top of the stack's.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { parseConfigText } from '../../service/config/load';
import { hashKey } from '../../service/tenancy/keys';

const ROOT = join(__dirname, '../..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(script: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'scripts', `${script}.ts`), ...args],
      { cwd: ROOT, timeout: 90_000, env: { ...process.env, GATEWAY_URL: '', GATEWAY_KEY: '', ...env } },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
      },
    );
  });
}

const noStack = (r: Run) => assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at |Error:|node:internal/, `no stack trace:\n${r.stderr}`);

/** A usage error: exit 2, `<script>: <problem>` first, the usage line, nothing on stdout. */
function assertUsageError(r: Run, script: string, problem: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stdout, '');
  const [first, second] = r.stderr.split('\n');
  assert.match(first, new RegExp(`^${script}: `));
  assert.match(first, problem);
  assert.match(second, /^usage: npm run /);
  noStack(r);
}

describe('script command lines', function () {
  this.timeout(120_000);

  for (const script of ['keygen', 'render', 'smoke', 'demo']) {
    it(`${script} --help prints the usage and exits 0 (and -h too)`, async () => {
      for (const flag of ['--help', '-h']) {
        const r = await run(script, [flag]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`^usage: npm run ${script}`));
        assert.ok(r.stdout.split('\n').length > 5, 'more than the usage line: what it does and its options');
        assert.equal(r.stderr, '');
      }
    });
  }

  const usageErrors: Array<[string, string[], RegExp]> = [
    ['keygen', ['--nmae', 'x'], /Unknown option '--nmae'/],
    ['keygen', ['--name', 'bad name'], /--name "bad name" must be a DNS label/],
    ['keygen', ['--team', 'Search'], /--team "Search" must be a DNS label/],
    ['keygen', ['--stack', 'nope'], /unknown stack "nope"; known stacks: production, staging/],
    ['keygen', ['--admin', '--team', 'x'], /an admin key has no team or project/],
    ['render', ['--stack', 'nope'], /unknown stack "nope"; known stacks: production, staging/],
    ['render', [], /--stack is required/],
    ['render', ['--stak', 'staging'], /unknown option --stak/],
    ['render', ['--stack', 'staging', '--config-file', '/nonexistent/x.yaml'], /--config-file \/nonexistent\/x.yaml: no such file/],
    ['smoke', [], /missing --url/],
    ['smoke', ['--url', 'http://127.0.0.1:9', '--key', 'k', '--max-latency', '5'], /unknown option --max-latency/],
    ['smoke', ['--url', 'not a url', '--key', 'k'], /--url is not a URL/],
    ['demo', ['--port', '9000'], /unexpected argument "--port"/],
  ];
  for (const [script, args, problem] of usageErrors) {
    it(`${script} ${args.join(' ') || '(no arguments)'}: a clear usage error, exit 2`, async () => {
      assertUsageError(await run(script, args), script, problem);
    });
  }

  it('keygen: the printed YAML is accepted by the gateway config parser, and the key matches the hash', async () => {
    const r = await run('keygen', ['--name', 'search-backend', '--team', 'search', '--project', 'ranking']);
    assert.equal(r.code, 0, r.stderr);
    const key = /^key: {2}(\S+)$/m.exec(r.stdout)![1];
    const hash = /^hash: (\S+)$/m.exec(r.stdout)![1];
    assert.equal(hashKey(key), hash);
    const yaml = r.stdout.slice(r.stdout.indexOf('auth:'), r.stdout.indexOf('\n\n', r.stdout.indexOf('auth:')));
    const cfg = parseConfigText(`${yaml}\nproviders: [{name: p, base_url: "http://127.0.0.1:9/v1", api_key: x, models: [{name: m, input_per_million: 1, output_per_million: 2}]}]\n`);
    assert.deepEqual(
      cfg.auth.keys.map((k) => [k.hash, k.name, k.team, k.project]),
      [[hash, 'search-backend', 'search', 'ranking']],
    );
  });

  it('keygen --admin --name ops keeps the name: in the plain config and as the stack secret adminKeyHashes.ops', async () => {
    const plain = await run('keygen', ['--admin', '--name', 'ops']);
    const hash = /^hash: (\S+)$/m.exec(plain.stdout)![1];
    assert.match(plain.stdout, new RegExp(`- "${hash}" # ops`));
    const yaml = plain.stdout.slice(plain.stdout.indexOf('auth:'), plain.stdout.indexOf('\n\n', plain.stdout.indexOf('auth:')));
    assert.deepEqual(
      parseConfigText(`${yaml}\n  mode: none\nproviders: [{name: p, base_url: "http://127.0.0.1:9/v1", api_key: x, models: [{name: m, input_per_million: 1, output_per_million: 2}]}]\n`).auth
        .admin_key_hashes,
      [hash],
    );
    const stack = await run('keygen', ['--admin', '--name', 'ops', '--stack', 'staging']);
    const stackHash = /^hash: (\S+)$/m.exec(stack.stdout)![1];
    assert.match(stack.stdout, /^ {4}- ops$/m);
    assert.ok(stack.stdout.split('\n').includes(`pulumi config set --stack staging --secret --path 'adminKeyHashes.ops' ${stackHash}`), stack.stdout);
  });

  it('keygen --stack prints the exact pulumi config set line for clientKeyHashes.<name>, and says when the team is not declared', async () => {
    const r = await run('keygen', ['--name', 'search-backend', '--team', 'search', '--stack', 'production']);
    const hash = /^hash: (\S+)$/m.exec(r.stdout)![1];
    const lines = r.stdout.split('\n');
    assert.ok(lines.includes(`pulumi config set --stack production --secret --path 'clientKeyHashes.search-backend' ${hash}`), r.stdout);
    const grant = lines.slice(lines.indexOf('') + 1);
    assert.ok(!grant.some((l) => /^\s*-?\s*hash:/.test(l)), 'no hash in the stack file lines (the stack refuses it there)');
    assert.ok(grant.includes('        - name: search-backend') && grant.includes('          team: search'), r.stdout);
    assert.doesNotMatch(r.stdout, /not declared|add it under/);
    const other = await run('keygen', ['--name', 'x', '--team', 'newteam', '--stack', 'production']);
    assert.match(other.stdout, /declares teams \(.*\) and not "newteam".*once any team is declared, every key's team must be/);
  });

  it('render --config-file lays the gateway block on top of the stack file (keys and teams kept)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aigw-cli-render-'));
    try {
      const file = join(dir, 'overrides.yaml');
      writeFileSync(file, stringify({ config: { 'ai-gateway:gateway': { server: { log_level: 'warn' }, rate_limit: { requests_per_minute: 77 } } } }));
      const out = join(dir, 'out');
      const r = await run('render', ['--stack', 'staging', '--out', out, '--config-file', file]);
      assert.equal(r.code, 0, r.stderr);
      const cm = readdirSync(out)
        .filter((f) => f.startsWith('configmap-'))
        .map((f) => readFileSync(join(out, f), 'utf8'))
        .find((t) => t.includes('config.yaml'));
      assert.ok(cm, 'the gateway ConfigMap');
      const gateway = parseYaml((parseYaml(cm!) as { data: Record<string, string> }).data['config.yaml']) as {
        server: { log_level: string; shutdown_grace_ms: number };
        rate_limit: { requests_per_minute: number; burst: number };
        auth: { keys: Array<{ name: string }> };
        teams: unknown[];
      };
      assert.equal(gateway.server.log_level, 'warn', 'the override applies');
      assert.equal(gateway.server.shutdown_grace_ms, 30000, "the stack's other server keys stay");
      assert.equal(gateway.rate_limit.requests_per_minute, 77);
      assert.equal(gateway.rate_limit.burst, 20, "the stack's burst stays");
      assert.deepEqual(
        gateway.auth.keys.map((k) => k.name),
        ['staging-tester'],
        'the keys stay',
      );
      assert.ok(gateway.teams.length > 0, 'the teams stay');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
