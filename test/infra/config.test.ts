/** Stack config validation: a broken stack fails before anything is created, with a message naming the key. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { StackConfigError, parsePlainStackConfig, parseStackConfig, placeholderSecret, secretSlots } from '../../infra/config';
import { renderGatewayConfig } from '../../infra/gatewayConfig';
import { Obj, ROOT, cleanup, render } from './helpers';

/** A stack file's `ai-gateway:*` keys without the prefix. */
function stackFile(stack: string): Record<string, unknown> {
  const doc = parseYaml(readFileSync(join(ROOT, 'stacks', `Pulumi.${stack}.yaml`), 'utf8')) as { config: Record<string, unknown> };
  return Object.fromEntries(Object.entries(doc.config).map(([k, v]) => [k.replace(/^ai-gateway:/, ''), v]));
}

/** The stack file with every secret it needs set to a placeholder. */
function withSecrets(raw: Record<string, unknown>): Obj {
  const out = structuredClone(raw) as Obj;
  for (const slot of secretSlots(parsePlainStackConfig(raw))) {
    if (slot.entry === undefined) out[slot.key] = placeholderSecret(slot);
    else out[slot.key] = { ...out[slot.key], [slot.entry]: placeholderSecret(slot) };
  }
  return out;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof StackConfigError) return err.problems;
    throw err;
  }
  assert.fail('expected a StackConfigError');
}

describe('infra: stack config', () => {
  const production = () => withSecrets(stackFile('production'));

  it('accepts both committed stacks once their secrets are set', () => {
    for (const stack of ['staging', 'production']) {
      const c = parseStackConfig(withSecrets(stackFile(stack)));
      assert.equal(c.environment, stack);
      assert.ok(renderGatewayConfig(c, 'redis').yaml.length > 0);
    }
  });

  it('names each missing secret and the command that sets it', () => {
    const raw = stackFile('production');
    const problems = problemsOf(() => parseStackConfig(raw));
    assert.ok(problems.includes(`ai-gateway:providerApiKeys.azure-east: missing secret; set it with \`pulumi config set --secret --path 'providerApiKeys.azure-east' <value>\``), problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('ai-gateway:clientKeyHashes.search-backend: missing secret')));
    assert.ok(problems.some((p) => p.startsWith('ai-gateway:redisPassword: missing secret')));
  });

  it('refuses a malformed key hash without echoing it', () => {
    const raw = production();
    (raw.clientKeyHashes as Record<string, string>)['support-bot'] = 'sk-live-oops-this-is-the-key-itself';
    const problems = problemsOf(() => parseStackConfig(raw));
    assert.deepEqual(problems, ['ai-gateway:clientKeyHashes.support-bot: must be "sha256:" followed by 64 lower-case hex digits (see `npm run keygen`)']);
    assert.ok(!problems.join().includes('oops'));
  });

  const broken: [string, (raw: Obj) => void, RegExp][] = [
    ['production with auth mode none', (r) => (r.gateway.auth.mode = 'none'), /^ai-gateway:gateway\.auth\.mode: the production environment refuses auth mode "none"/],
    ['negative replicas', (r) => (r.replicas = -2), /^ai-gateway:replicas: Too small/],
    ['HPA maximum under the replicas', (r) => (r.autoscaling.maxReplicas = 2), /^ai-gateway:autoscaling\.maxReplicas: must be at least replicas \(3\)/],
    ['an unpinned image', (r) => (r.image = 'ghcr.io/example/ai-gateway:latest'), /^ai-gateway:image: must pin a tag or digest/],
    ['a host that is not a DNS name', (r) => (r.route.host = 'https://gateway.example.com/'), /^ai-gateway:route\.host: must be a lower-case DNS host name/],
    ['a provider key in plain config', (r) => (r.gateway.providers[0].api_key = 'sk-plain'), /^ai-gateway:gateway\.providers\[0\]\.api_key: set provider keys as the secret providerApiKeys/],
    ['a Redis block inside the gateway config', (r) => (r.gateway.redis = { host: 'x' }), /^ai-gateway:gateway\.redis: Redis is set by the stack key "redis"/],
    ['a canary weight over 100', (r) => (r.canary = { image: 'ghcr.io/example/ai-gateway:0.2.0', weight: 101 }), /^ai-gateway:canary\.weight: Too big/],
    ['a missing namespace', (r) => delete r.namespace, /^ai-gateway:namespace: is required$/],
    ['a managed Redis without egress CIDRs', (r) => (r.redis = { mode: 'external' }), /^ai-gateway:redis\.egressCidrs: is required$/],
    [
      'a stack file from before route.kind (ingress key)',
      (r) => (r.ingress = { host: 'gateway.example.com', clusterIssuer: 'letsencrypt-prod' }),
      /^ai-gateway:ingress: replaced by "route": move host to route\.host.*route\.kind: ingress-nginx/,
    ],
    ['an egress.extra entry with neither a CIDR nor a namespace', (r) => (r.egress = { extra: [{ port: 8000 }] }), /^ai-gateway:egress\.extra\[0\]: set exactly one of cidr or namespace/],
    ['an egress.extra CIDR that does not parse', (r) => (r.egress = { extra: [{ cidr: '10.0.0.300/24', port: 8000 }] }), /^ai-gateway:egress\.extra\[0\]\.cidr: must be an IPv4 CIDR/],
    [
      'a canary.gateway that moves the listening port',
      (r) => (r.canary = { image: 'ghcr.io/example/ai-gateway:0.2.0', weight: 5, gateway: { server: { port: 8081 } } }),
      /^ai-gateway:canary\.gateway\.server\.port: the canary listens where the stable pods do/,
    ],
    ['an https:// proxy URL', (r) => (r.egress = { proxy: { url: 'https://proxy.example.com:3128' } }), /^ai-gateway:egress\.proxy\.url: must be an http:\/\/ URL/],
    [
      'a canary.gateway holding a provider key',
      (r) => (r.canary = { image: 'ghcr.io/example/ai-gateway:0.2.0', weight: 5, gateway: { providers: [{ name: 'x', api_key: 'sk-plain' }] } }),
      /^ai-gateway:canary\.gateway\.providers\.0\.api_key: set provider keys as the secret|^ai-gateway:canary\.gateway\.providers\[0\]\.api_key: set provider keys as the secret/,
    ],
  ];
  for (const [what, breakIt, expected] of broken) {
    it(`refuses ${what}, naming the key`, () => {
      const raw = production();
      breakIt(raw);
      const problems = problemsOf(() => parseStackConfig(raw));
      assert.ok(
        problems.some((p) => expected.test(p)),
        `expected ${expected} in:\n${problems.join('\n')}`,
      );
    });
  }

  it('the committed stack files hold secrets only encrypted (secure:), never in plain text', () => {
    const secretKeys = ['providerApiKeys', 'clientKeyHashes', 'adminKeyHashes', 'redisPassword', 'redisUrl'];
    const leaves = (v: unknown): unknown[] => (v && typeof v === 'object' && !('secure' in v) ? Object.values(v).flatMap(leaves) : [v]);
    for (const stack of ['staging', 'production']) {
      const raw = stackFile(stack);
      for (const key of secretKeys) {
        for (const leaf of raw[key] === undefined ? [] : leaves(raw[key])) assert.ok(leaf && typeof leaf === 'object' && 'secure' in leaf, `${stack}: ai-gateway:${key} holds a plain value`);
      }
    }
  });

  it("refuses what the gateway's own schema refuses, naming the key under ai-gateway:gateway", () => {
    const raw = production();
    raw.gateway.providers[1].base_url = 'not a url';
    raw.gateway.models['gpt-4o'].weights = { openai: 1, nobody: 1 };
    const c = parseStackConfig(raw);
    const problems = problemsOf(() => renderGatewayConfig(c, 'redis'));
    assert.ok(problems.includes('ai-gateway:gateway.providers[1].base_url: Invalid URL'), problems.join('\n'));
    assert.ok(
      problems.some((p) => p.startsWith('ai-gateway:gateway.models.gpt-4o: unknown provider "nobody"')),
      problems.join('\n'),
    );
  });
});

describe('infra: broken stacks fail the render (and so `pulumi up`) before any object is written', function () {
  this.timeout(400_000);
  after(cleanup);

  const cases: [string, string[], string][] = [
    ['bad provider URL', ['--set', 'gateway.providers[0].base_url=ftp//nope'], 'ai-gateway:gateway.providers[0].base_url: Invalid URL'],
    ['negative replicas', ['--set', 'replicas=-1'], 'ai-gateway:replicas: Too small'],
    ['production with auth none', ['--set', 'gateway.auth.mode=none'], 'ai-gateway:gateway.auth.mode: the production environment refuses auth mode "none"'],
    ['a misspelt key', ['--set', 'replica=3'], 'ai-gateway:replica: unknown key'],
  ];
  it('exits non-zero, names the key, writes nothing', async () => {
    const results = await Promise.all(cases.map(([, args]) => render('production', ...args)));
    results.forEach((r, i) => {
      const [what, , message] = cases[i];
      assert.notEqual(r.code, 0, `${what}: render succeeded`);
      assert.ok(r.stderr.includes(message), `${what}: stderr lacks "${message}":\n${r.stderr}`);
      assert.ok(!/\n\s+at /.test(r.stderr), `${what}: prints a stack trace`);
      assert.equal(r.files.size, 0, `${what}: wrote files`);
    });
  });

  it('keeps a secret that looks like a number a string (the CLI passes top-level values as text)', async () => {
    const r = await render('staging', '--set-secret', 'redisPassword=12345678901234567890', '--set-secret', 'providerApiKeys.openai=1234567890');
    assert.equal(r.code, 0, r.stderr);
  });

  it('Pulumi.yaml runs infra/ through tsx the way the Pulumi CLI does, and the program validates config first', async () => {
    const project = parseYaml(readFileSync(join(ROOT, 'Pulumi.yaml'), 'utf8')) as {
      name: string;
      main: string;
      stackConfigDir: string;
      runtime: { options: { nodeargs: string; typescript: boolean } };
    };
    assert.equal(project.name, 'ai-gateway');
    assert.equal(project.stackConfigDir, 'stacks');
    assert.equal(project.runtime.options.typescript, false);
    // The CLI's nodejs host runs `node <nodeargs> run.js ... <main>`, which require()s the main directory.
    const nodeArgs = project.runtime.options.nodeargs.split(' ');
    const stderr = await new Promise<string>((done) =>
      execFile(process.execPath, [...nodeArgs, '-e', `require(${JSON.stringify(join(ROOT, project.main))})`], { cwd: ROOT, env: { ...process.env, PULUMI_CONFIG: '{}' } }, (_err, _out, err) =>
        done(err),
      ),
    );
    assert.match(stderr, /invalid stack config:\n\s+- ai-gateway:environment: is required/);
  });
});
