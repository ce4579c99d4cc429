/**
 * Day-2 operations against the rendered objects: what a second `pulumi up` does after a config change,
 * a secret rotation, a Redis password rotation or a new image; the pinned provider and protection
 * (seen in the resource registrations the engine receives: `npm run render -- --manifest`); Redis
 * sizing; the alerts; the smoke probe CronJob.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { parse as parseYaml, stringify } from 'yaml';
import { PATCHED_REDIS_IMAGE, StackConfigError, parsePlainStackConfig, parseStackConfig } from '../../infra/config';
import { contextProblem } from '../../infra/provider';
import { MAXMEMORY_RATIO, quantityBytes } from '../../infra/redis';
import type { ManifestEntry } from '../../scripts/render';
import { hashKey } from '../../service/tenancy/keys';
import { Obj, ROOT, RenderResult, cleanup, named, ofKind, one, podTemplates, render, selects } from './helpers';
import { testTempDir } from '../helpers/temp-dirs';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const SECRETS: Record<string, string> = {
  'providerApiKeys.openai': 'sk-day2-openai-key-0001',
  'providerApiKeys.azure-east': 'azure-day2-key-0001',
  'clientKeyHashes.search-backend': `sha256:${sha('search')}`,
  'clientKeyHashes.support-bot': `sha256:${sha('support')}`,
  'adminKeyHashes.platform-admin': `sha256:${sha('admin')}`,
  redisPassword: 'redis-day2-password-first',
  smokeProbeKey: 'sk-gw-day2-smoke-probe-key',
};
const secretArgs = (over: Record<string, string> = {}) => Object.entries({ ...SECRETS, ...over }).flatMap(([k, v]) => ['--set-secret', `${k}=${v}`]);
const PREVIOUS_IMAGE = `ghcr.io/example/ai-gateway:0.0.9@sha256:${sha('previous')}`;

interface Rendered extends RenderResult {
  manifest: ManifestEntry[];
}

const tmp = testTempDir('aigw-day2-');
let seq = 0;
async function renderWithManifest(stack: string, ...extra: string[]): Promise<Rendered> {
  const file = join(tmp, `manifest-${seq++}.json`);
  const r = await render(stack, '--manifest', file, ...extra);
  assert.equal(r.code, 0, `render ${stack} ${extra.join(' ')} failed: ${r.stderr}`);
  return { ...r, manifest: JSON.parse(readFileSync(file, 'utf8')) as ManifestEntry[] };
}

const deployment = (r: RenderResult) => one(r, 'Deployment', 'ai-gateway');
const podSpec = (r: RenderResult, kind: string, name: string) => one(r, kind, name).spec.template;
const configVolume = (r: RenderResult) => deployment(r).spec.template.spec.volumes.find((v: Obj) => v.name === 'config').configMap.name;
const envFromSecret = (r: RenderResult) => deployment(r).spec.template.spec.containers[0].envFrom[0].secretRef.name;
const redisAuthRef = (r: RenderResult, name: string) => podSpec(r, 'StatefulSet', name).spec.containers[0].env.find((e: Obj) => e.name === 'REDIS_PASSWORD').valueFrom.secretKeyRef.name;
const entry = (r: Rendered, type: string, name: string) => {
  const e = r.manifest.find((m) => m.type === type && m.name === name);
  if (!e) throw new Error(`no registration ${type} ${name}`);
  return e;
};

/** A throwaway CA certificate, made with openssl. */
function caCert(): string {
  const dir = mkdtempSync(join(tmp, 'ca-'));
  const res = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=day2 test CA', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt')], {
    encoding: 'utf8',
  });
  assert.equal(res.status, 0, res.stderr);
  return readFileSync(join(dir, 'ca.crt'), 'utf8');
}

let CA_PEM = '';
/** A stack-file-shaped override: a managed Redis behind Sentinel, over TLS with a private CA. */
function managedRedisFile(): string {
  CA_PEM = caCert();
  const file = join(tmp, 'managed-redis.yaml');
  const redis = {
    mode: 'external',
    egressCidrs: ['10.20.0.0/24'],
    port: 6380,
    sentinels: [{ host: 'sentinel-0.redis.internal', port: 26379 }],
    sentinelName: 'gateway-master',
    tls: { caCert: CA_PEM, servername: 'redis.internal' },
  };
  writeFileSync(file, stringify({ config: { 'ai-gateway:redis': redis } }));
  return file;
}

describe('infra: day-2 operations', function () {
  this.timeout(400_000);
  let base: Rendered;
  let configChanged: Rendered;
  let keyRotated: Rendered;
  let passwordRotated: Rendered;
  let previousImage: Rendered;
  let staging: Rendered;
  let sentinel: Rendered;

  before(async () => {
    [base, configChanged, keyRotated, passwordRotated, previousImage, staging, sentinel] = await Promise.all([
      renderWithManifest('production', ...secretArgs()),
      renderWithManifest('production', ...secretArgs(), '--set', 'gateway.server.log_level=debug'),
      renderWithManifest('production', ...secretArgs({ 'providerApiKeys.openai': 'sk-day2-openai-key-0002' })),
      renderWithManifest('production', ...secretArgs({ redisPassword: 'redis-day2-password-second' })),
      renderWithManifest('production', ...secretArgs(), '--set', `image=${PREVIOUS_IMAGE}`),
      renderWithManifest('staging'),
      renderWithManifest('staging', '--config-file', managedRedisFile(), '--set-secret', 'redisUrl=rediss://:day2-pass@redis.internal:6380'),
    ]);
  });
  after(() => {
    cleanup();
    rmSync(tmp, { recursive: true, force: true });
  });

  describe('a change rolls the pods onto new objects, never deleting one they use first', () => {
    it('a config value change: a new content-named ConfigMap, the Deployment rolls onto it; Secrets and Redis untouched', () => {
      const [before, after] = [named(base, 'ConfigMap', 'ai-gateway-config'), named(configChanged, 'ConfigMap', 'ai-gateway-config')];
      assert.notEqual(before.metadata.name, after.metadata.name, 'the ConfigMap name follows its content');
      assert.equal(before.immutable, true);
      assert.equal(configVolume(base), before.metadata.name);
      assert.equal(configVolume(configChanged), after.metadata.name, 'the pod template names the new ConfigMap, so the pods roll');
      assert.notEqual(deployment(base).spec.template.metadata.annotations['checksum/config'], deployment(configChanged).spec.template.metadata.annotations['checksum/config']);
      assert.equal(envFromSecret(base), envFromSecret(configChanged));
      assert.deepEqual(podSpec(base, 'StatefulSet', 'redis'), podSpec(configChanged, 'StatefulSet', 'redis'), 'a gateway config change does not restart Redis');
      // Same Pulumi resource, new metadata.name: pulumi-kubernetes then replaces create-before-delete
      // (deleteBeforeReplace only when the name stays the same), and nothing here asks otherwise.
      const [e1, e2] = [entry(base, 'kubernetes:core/v1:ConfigMap', 'gateway-config'), entry(configChanged, 'kubernetes:core/v1:ConfigMap', 'gateway-config')];
      assert.notEqual(e1.metadataName, e2.metadataName);
      assert.ok(
        base.manifest.every((m) => !m.deleteBeforeReplace),
        'no resource asks for delete-before-replace',
      );
    });

    it('a provider key rotation: a new gateway Secret, the gateways roll; Redis keeps running', () => {
      assert.notEqual(envFromSecret(base), envFromSecret(keyRotated));
      assert.equal(envFromSecret(keyRotated), named(keyRotated, 'Secret', 'ai-gateway-secrets').metadata.name);
      assert.equal(named(keyRotated, 'Secret', 'ai-gateway-secrets').immutable, true);
      assert.equal(configVolume(base), configVolume(keyRotated));
      assert.deepEqual(podSpec(base, 'StatefulSet', 'redis'), podSpec(keyRotated, 'StatefulSet', 'redis'));
    });

    it('a Redis password rotation restarts both Redis servers onto the new password in the same update as the gateways', () => {
      for (const sts of ['redis', 'redis-cache']) {
        assert.notEqual(redisAuthRef(base, sts), redisAuthRef(passwordRotated, sts), `${sts} must restart with the new password`);
        assert.equal(redisAuthRef(passwordRotated, sts), named(passwordRotated, 'Secret', 'redis-auth').metadata.name);
      }
      assert.notEqual(envFromSecret(base), envFromSecret(passwordRotated), 'the gateways roll onto the new password too');
      assert.ok(!named(passwordRotated, 'Secret', 'redis-auth').metadata.name.includes('second'));
    });

    it('rollback to the previous image changes only the image (Deployment and probe); config and Secrets keep their names', () => {
      assert.equal(deployment(previousImage).spec.template.spec.containers[0].image, PREVIOUS_IMAGE);
      const changed = [...base.files.keys()].filter((f) => previousImage.files.get(f) !== base.files.get(f)).sort();
      assert.deepEqual(changed, ['cronjob-ai-gateway-smoke-probe.yaml', 'deployment-ai-gateway.yaml']);
    });
  });

  describe('the cluster and what must survive', () => {
    it('every Kubernetes object goes through the one provider pinned to the stack context, with mutable ConfigMaps/Secrets off', () => {
      for (const [r, context] of [
        [base, 'production'],
        [staging, 'staging'],
      ] as const) {
        const providers = r.manifest.filter((m) => m.type === 'pulumi:providers:kubernetes');
        assert.equal(providers.length, 1);
        assert.equal(providers[0].providerInputs?.context, context);
        assert.equal(String(providers[0].providerInputs?.enableConfigMapMutable), 'false');
        assert.equal(String(providers[0].providerInputs?.enableSecretMutable), 'false');
        const k8s = r.manifest.filter((m) => m.type.startsWith('kubernetes:'));
        assert.equal(k8s.length, r.objects.length);
        for (const m of k8s) assert.match(m.provider, /::pulumi:providers:kubernetes::cluster::/, `${m.type} ${m.name} uses ${m.provider || 'the default provider'}`);
      }
    });

    it('stops before creating anything when the kubeconfig lacks the stack context', async () => {
      const kubeconfig = join(tmp, 'other-kubeconfig');
      writeFileSync(kubeconfig, stringify({ apiVersion: 'v1', kind: 'Config', contexts: [{ name: 'someone-elses-cluster', context: { cluster: 'x', user: 'x' } }] }));
      const manifest = join(tmp, 'refused.json');
      const r = await render('production', ...secretArgs(), '--kubeconfig', kubeconfig, '--manifest', manifest);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /ai-gateway:cluster\.context: context "production" is not in .*other-kubeconfig \(it has: someone-elses-cluster\)/);
      assert.equal(r.files.size, 0, 'no object written');
    });

    it('production protects and retains the namespace and the Redis data; staging protects nothing', () => {
      for (const [type, name] of [
        ['kubernetes:core/v1:Namespace', 'namespace'],
        ['kubernetes:apps/v1:StatefulSet', 'redis'],
      ]) {
        const e = entry(base, type, name);
        assert.ok(e.protect && e.retainOnDelete, `${type} ${name} must be protected and retained`);
      }
      assert.ok(!entry(base, 'kubernetes:apps/v1:StatefulSet', 'redis-cache').protect, 'the cache is disposable');
      assert.ok(staging.manifest.every((m) => !m.protect));
      assert.deepEqual(one(base, 'StatefulSet', 'redis').spec.persistentVolumeClaimRetentionPolicy, { whenDeleted: 'Retain', whenScaled: 'Retain' });
    });
  });

  describe('Redis', () => {
    it('caps memory under the container limit: noeviction for state, allkeys-lru for the cache; the gateway uses each', () => {
      for (const [sts, policy, ratio] of [
        ['redis', 'noeviction', MAXMEMORY_RATIO.state],
        ['redis-cache', 'allkeys-lru', MAXMEMORY_RATIO.cache],
      ] as const) {
        const c = podSpec(base, 'StatefulSet', sts).spec.containers[0];
        const flag = (f: string) => c.args[c.args.indexOf(f) + 1];
        assert.equal(flag('--maxmemory-policy'), policy);
        const limit = quantityBytes(c.resources.limits.memory);
        assert.equal(Number(flag('--maxmemory')), Math.floor(limit * ratio));
        assert.ok(Number(flag('--maxmemory')) < limit);
      }
      // Production: 1Gi limit -> 70% for state; the cache's default 256Mi limit -> 75%.
      const maxmemory = (sts: string) => {
        const a = podSpec(base, 'StatefulSet', sts).spec.containers[0].args;
        return a[a.indexOf('--maxmemory') + 1];
      };
      assert.deepEqual([maxmemory('redis'), maxmemory('redis-cache')], ['751619276', '201326592']);
      const cfg = parseYaml(named(base, 'ConfigMap', 'ai-gateway-config').data['config.yaml']);
      assert.equal(cfg.redis.host, 'redis.ai-gateway.svc.cluster.local');
      assert.equal(cfg.cache.redis.host, 'redis-cache.ai-gateway.svc.cluster.local');
      const cachePods = podSpec(base, 'StatefulSet', 'redis-cache').metadata.labels;
      const gwPods = deployment(base).spec.template.metadata.labels;
      const fromGateway = ofKind(base, 'NetworkPolicy').filter(
        (p) => selects(p.spec.podSelector, gwPods) && (p.spec.egress ?? []).some((e: Obj) => e.to.some((t: Obj) => selects(t.podSelector, cachePods))),
      );
      assert.equal(fromGateway.length, 1, 'the gateway may reach the cache Redis');
    });

    it('runs a patched image (7.4.6+), and its PDB lets a node drain evict the single state pod (no minAvailable: 1)', () => {
      const version = (image: string) => /^redis:(\d+)\.(\d+)\.(\d+)/.exec(image)!.slice(1).map(Number);
      for (const sts of ['redis', 'redis-cache']) {
        const [maj, min, patch] = version(podSpec(base, 'StatefulSet', sts).spec.containers[0].image);
        assert.ok(maj > 7 || (maj === 7 && (min > 4 || (min === 4 && patch >= 6))), `${sts}: redis ${maj}.${min}.${patch} predates the CVE-2025-49844 fix`);
      }
      assert.equal(podSpec(base, 'StatefulSet', 'redis').spec.containers[0].image, PATCHED_REDIS_IMAGE);
      const pdb = one(base, 'PodDisruptionBudget', 'redis');
      assert.equal(pdb.spec.minAvailable, undefined, 'minAvailable 1 on one replica blocks every node drain');
      assert.equal(pdb.spec.maxUnavailable, 1);
      assert.ok(selects(pdb.spec.selector, podSpec(base, 'StatefulSet', 'redis').metadata.labels));
    });

    it('managed Redis: per-stack key prefix by default, Sentinel and its egress, rediss:// with a private CA', () => {
      const cfg = parseYaml(named(sentinel, 'ConfigMap', 'ai-gateway-config').data['config.yaml']);
      assert.equal(cfg.redis.key_prefix, 'aigw:staging:');
      assert.deepEqual(cfg.redis.sentinels, [{ host: 'sentinel-0.redis.internal', port: 26379 }]);
      assert.equal(cfg.redis.sentinel_name, 'gateway-master');
      const egress = one(sentinel, 'NetworkPolicy', 'ai-gateway-gateway').spec.egress[1];
      assert.deepEqual(
        egress.ports.map((p: Obj) => p.port),
        [6380, 26379],
      );
      // rediss:// with the private CA: a content-named ConfigMap mounted into the pods, the gateway pointed at it.
      assert.deepEqual(cfg.redis.tls, { ca_file: '/etc/redis-ca/ca.crt', servername: 'redis.internal' });
      const ca = named(sentinel, 'ConfigMap', 'redis-ca');
      assert.equal(ca.data['ca.crt'], CA_PEM);
      const pod = deployment(sentinel).spec.template.spec;
      assert.deepEqual(
        pod.volumes.find((v: Obj) => v.name === 'redis-ca'),
        { name: 'redis-ca', configMap: { name: ca.metadata.name } },
      );
      assert.deepEqual(
        pod.containers[0].volumeMounts.find((m: Obj) => m.name === 'redis-ca'),
        { name: 'redis-ca', mountPath: '/etc/redis-ca', readOnly: true },
      );
    });
  });

  describe('verification', () => {
    it('a CronJob runs the smoke probe against the Service every 15 minutes with its own low-limit key', () => {
      const cron = one(base, 'CronJob', 'ai-gateway-smoke-probe');
      assert.equal(cron.spec.schedule, '*/15 * * * *');
      assert.equal(cron.spec.concurrencyPolicy, 'Forbid');
      const c = cron.spec.jobTemplate.spec.template.spec.containers[0];
      assert.equal(c.image, deployment(base).spec.template.spec.containers[0].image);
      assert.deepEqual(c.command.slice(0, 4), ['node', 'dist/scripts/smoke.js', '--url', 'http://ai-gateway.ai-gateway.svc.cluster.local']);
      // Judged on the stream's first byte (the gateway's path); a whole answer only gets a generous bound (the model's time).
      assert.equal(c.command[c.command.indexOf('--max-first-byte-ms') + 1], '2000');
      assert.equal(c.command[c.command.indexOf('--max-latency-ms') + 1], '30000');
      const keySecret = named(base, 'Secret', 'ai-gateway-smoke-probe');
      assert.deepEqual(c.env, [{ name: 'GATEWAY_KEY', valueFrom: { secretKeyRef: { name: keySecret.metadata.name, key: 'GATEWAY_KEY' } } }]);
      const cfg = parseYaml(named(base, 'ConfigMap', 'ai-gateway-config').data['config.yaml']);
      const key = cfg.auth.keys.find((k: Obj) => k.name === 'smoke-probe');
      assert.equal(key.hash, '${CLIENT_KEY_HASH_SMOKE_PROBE}');
      assert.ok(key.rate_limit.requests_per_minute <= 10);
      assert.ok(cfg.teams.find((t: Obj) => t.name === key.team).budget.daily_usd <= 5);
      assert.ok('CLIENT_KEY_HASH_SMOKE_PROBE' in named(base, 'Secret', 'ai-gateway-secrets').stringData);
      for (const text of base.files.values()) assert.ok(!text.includes(SECRETS.smokeProbeKey) && !text.includes(hashKey(SECRETS.smokeProbeKey)));
      assert.equal(ofKind(staging, 'CronJob').length, 0, 'staging runs no probe unless asked');
      // The probe pod may reach the gateway pods' HTTP port, and they admit it.
      const probePods = cron.spec.jobTemplate.spec.template.metadata.labels;
      const gwPods = deployment(base).spec.template.metadata.labels;
      const policies = ofKind(base, 'NetworkPolicy');
      assert.ok(policies.some((p) => selects(p.spec.podSelector, probePods) && p.spec.egress?.some((e: Obj) => e.to.some((t: Obj) => selects(t.podSelector, gwPods)))));
      assert.ok(policies.some((p) => selects(p.spec.podSelector, gwPods) && p.spec.ingress?.some((i: Obj) => i.from.some((f: Obj) => selects(f.podSelector, probePods)))));
      assert.equal(podTemplates(base).filter(({ owner }) => owner.kind === 'CronJob').length, 1);
      // DNS: the very rule the gateway pods get (kube-dns by label, NodeLocal DNSCache), not a hard-coded kube-system.
      const dnsRule = (p: Obj) => p.spec.egress.find((e: Obj) => e.ports.some((x: Obj) => x.port === 53));
      assert.deepEqual(dnsRule(one(base, 'NetworkPolicy', 'ai-gateway-smoke-probe')), dnsRule(one(base, 'NetworkPolicy', 'ai-gateway-gateway')));
    });

    it('the image carries the compiled probe at the path the CronJob runs', () => {
      const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
      assert.match(dockerfile, /COPY scripts\/smoke\.ts \.\/scripts\/smoke\.ts/);
      assert.match(dockerfile, /COPY --from=build \/app\/dist\/scripts\/smoke\.js \.\/dist\/scripts\/smoke\.js/);
      // The build stage holds only service/ and this file: the script must import nothing of the repository.
      const source = readFileSync(join(ROOT, 'scripts/smoke.ts'), 'utf8');
      assert.doesNotMatch(source, /from '\.{1,2}\//, 'smoke.ts imports a repository file the image does not build');
      const out = join(tmp, 'smoke.js');
      writeFileSync(out, ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS } }).outputText);
      const usage = spawnSync(process.execPath, [out], { encoding: 'utf8' });
      assert.equal(usage.status, 2);
      assert.match(usage.stderr, /--max-latency-ms/);
    });

    it('alerts on Redis unreachable, buffered spend, a rejected provider key, the canary against stable, and a failing probe', () => {
      const rules = one(base, 'PrometheusRule', 'ai-gateway').spec.groups.flatMap((g: Obj) => g.rules) as Obj[];
      const expr = (name: string) => rules.find((r) => r.alert === name)?.expr as string;
      assert.match(expr('AIGatewayRedisUnreachable'), /aigw_redis_up\{namespace="ai-gateway"\}\) == 0$/);
      assert.match(expr('AIGatewaySpendBuffered'), /aigw_spend_buffered_entries\{namespace="ai-gateway"\}\) > 0$/);
      assert.match(expr('AIGatewayProviderKeyRejected'), /aigw_provider_unhealthy/);
      assert.match(expr('AIGatewayCanaryWorseThanStable'), /track="canary".* > 2 \* .*track="stable"/);
      assert.match(expr('AIGatewaySmokeProbeFailing'), /kube_cronjob_status_last_successful_time\{namespace="ai-gateway",cronjob="ai-gateway-smoke-probe"\}\) > 2100\) or /);
      assert.match(expr('AIGatewaySmokeProbeFailing'), /kube_cronjob_created\{namespace="ai-gateway",cronjob="ai-gateway-smoke-probe"\}\) > 2100\) unless on\(\) count\(/);
      const stagingRules = one(staging, 'PrometheusRule', 'ai-gateway').spec.groups.flatMap((g: Obj) => g.rules) as Obj[];
      assert.ok(!stagingRules.some((r) => r.alert === 'AIGatewaySmokeProbeFailing'), 'no probe, no probe alert');
    });

    it('every rule passes promtool check rules', function () {
      if (spawnSync('promtool', ['--version']).error) {
        console.warn('      promtool not found (Debian package prometheus): PromQL not checked');
        this.skip();
      }
      const file = join(tmp, 'rules.yaml');
      writeFileSync(file, stringify({ groups: one(base, 'PrometheusRule', 'ai-gateway').spec.groups }));
      const res = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      assert.equal(res.status, 0, `${res.stdout}${res.stderr}`);
      assert.match(res.stdout, /SUCCESS: \d+ rules found/);
    });

    it('the day-2 alerts fire on the series they watch and stay quiet before (promtool test rules)', function () {
      if (spawnSync('promtool', ['--version']).error) {
        console.warn('      promtool not found (Debian package prometheus): alerts not evaluated');
        this.skip();
      }
      const rules = one(base, 'PrometheusRule', 'ai-gateway').spec.groups.flatMap((g: Obj) => g.rules) as Obj[];
      const expr = (name: string) => rules.find((r) => r.alert === name)!.expr as string;
      const ns = 'namespace="ai-gateway"';
      const track = (t: string, status: string) => `aigw_requests_total{${ns},app_kubernetes_io_track="${t}",status_class="${status}"}`;
      // One sample a minute for an hour; each alert's condition starts at minute 10 (the probe's: never succeeds after t=0).
      const input_series = [
        { series: `aigw_redis_up{${ns},pod="gw-1"}`, values: '1x10 0x50' },
        { series: `aigw_redis_up{${ns},pod="gw-2"}`, values: '1x60' },
        { series: `aigw_spend_buffered_entries{${ns},pod="gw-1"}`, values: '0x10 5x50' },
        { series: `aigw_provider_unhealthy{${ns},provider="openai"}`, values: '0x10 1x50' },
        { series: `aigw_provider_unhealthy{${ns},provider="azure-east"}`, values: '0x60' },
        { series: track('stable', '5xx'), values: '0+1x60' },
        { series: track('stable', '2xx'), values: '0+99x60' },
        { series: track('canary', '5xx'), values: '0x20 10+10x39' },
        { series: track('canary', '2xx'), values: '0+90x60' },
        { series: `kube_cronjob_status_last_successful_time{${ns},cronjob="ai-gateway-smoke-probe"}`, values: '0x60' },
      ];
      const cases: [string, string, string][] = [
        ['AIGatewayRedisUnreachable', '5m', '30m'],
        ['AIGatewaySpendBuffered', '5m', '30m'],
        ['AIGatewayProviderKeyRejected', '5m', '30m'],
        ['AIGatewayCanaryWorseThanStable', '15m', '50m'],
        ['AIGatewaySmokeProbeFailing', '30m', '40m'],
      ];
      const promql_expr_test = cases.flatMap(([name, quiet, firing]) => [
        { expr: `count(${expr(name)})`, eval_time: quiet, exp_samples: [] },
        { expr: `count(${expr(name)})`, eval_time: firing, exp_samples: [{ labels: '{}', value: 1 }] },
      ]);
      const rulesFile = join(tmp, 'alert-rules.yaml');
      const testFile = join(tmp, 'alert-tests.yaml');
      writeFileSync(rulesFile, stringify({ groups: one(base, 'PrometheusRule', 'ai-gateway').spec.groups }));
      writeFileSync(testFile, stringify({ rule_files: [rulesFile], evaluation_interval: '1m', tests: [{ interval: '1m', input_series, promql_expr_test }] }));
      const res = spawnSync('promtool', ['test', 'rules', testFile], { encoding: 'utf8' });
      assert.equal(res.status, 0, `${res.stdout}${res.stderr}`);
      assert.match(res.stdout, /SUCCESS/);
    });
    it('the probe alert fires for a probe that never succeeded since its CronJob was created, and stays quiet once it succeeds (promtool test rules)', function () {
      if (spawnSync('promtool', ['--version']).error) {
        console.warn('      promtool not found (Debian package prometheus): alerts not evaluated');
        this.skip();
      }
      const rules = one(base, 'PrometheusRule', 'ai-gateway').spec.groups.flatMap((g: Obj) => g.rules) as Obj[];
      const expr = rules.find((r) => r.alert === 'AIGatewaySmokeProbeFailing')!.expr as string;
      const sel = 'namespace="ai-gateway",cronjob="ai-gateway-smoke-probe"';
      // Created at t=0 (kube_cronjob_created = 0); kube-state-metrics has no last-success series until a first success.
      const never = [{ series: `kube_cronjob_created{${sel}}`, values: '0x60' }];
      // Created at t=0, succeeds every 15 minutes (the success time follows the clock).
      const healthy = [
        { series: `kube_cronjob_created{${sel}}`, values: '0x60' },
        { series: `kube_cronjob_status_last_successful_time{${sel}}`, values: '0x14 900x15 1800x15 2700x16' },
      ];
      const test = (input_series: object[], quiet: string[], firing: string[]) => ({
        interval: '1m',
        input_series,
        promql_expr_test: [
          ...quiet.map((t) => ({ expr: `count(${expr})`, eval_time: t, exp_samples: [] })),
          ...firing.map((t) => ({ expr: `count(${expr})`, eval_time: t, exp_samples: [{ labels: '{}', value: 1 }] })),
        ],
      });
      const rulesFile = join(tmp, 'probe-rules.yaml');
      const testFile = join(tmp, 'probe-tests.yaml');
      writeFileSync(rulesFile, stringify({ groups: one(base, 'PrometheusRule', 'ai-gateway').spec.groups }));
      writeFileSync(testFile, stringify({ rule_files: [rulesFile], evaluation_interval: '1m', tests: [test(never, ['20m', '35m'], ['36m', '59m']), test(healthy, ['20m', '36m', '59m'], [])] }));
      const res = spawnSync('promtool', ['test', 'rules', testFile], { encoding: 'utf8' });
      assert.equal(res.status, 0, `${res.stdout}${res.stderr}`);
      assert.match(res.stdout, /SUCCESS/);
    });
  });

  describe('stack config', () => {
    const stackFile = (stack: string) => {
      const doc = parseYaml(readFileSync(join(ROOT, 'stacks', `Pulumi.${stack}.yaml`), 'utf8')) as { config: Record<string, unknown> };
      return Object.fromEntries(Object.entries(doc.config).map(([k, v]) => [k.replace(/^ai-gateway:/, ''), v])) as Obj;
    };
    const problems = (raw: Obj) => {
      try {
        parsePlainStackConfig(raw);
      } catch (err) {
        if (err instanceof StackConfigError) return err.problems;
        throw err;
      }
      return [];
    };

    it('requires a kubeconfig context in every stack file', () => {
      for (const stack of ['staging', 'production']) {
        const raw = stackFile(stack);
        assert.equal(typeof raw.cluster.context, 'string');
        delete raw.cluster;
        assert.deepEqual(problems(raw), ['ai-gateway:cluster: is required']);
      }
    });

    it('production accepts images by digest only (canary too); staging takes a tag', () => {
      const raw = stackFile('production');
      raw.image = 'ghcr.io/example/ai-gateway:0.2.0';
      raw.canary = { image: 'ghcr.io/example/ai-gateway:0.3.0', weight: 5 };
      assert.deepEqual(problems(raw), [
        'ai-gateway:image: production needs an image pinned by digest (name@sha256:...); a tag can be moved',
        'ai-gateway:canary.image: production needs an image pinned by digest (name@sha256:...); a tag can be moved',
      ]);
      const stg = stackFile('staging');
      stg.imagePullSecrets = ['ghcr-pull'];
      assert.deepEqual(problems(stg), []);
      assert.deepEqual(parsePlainStackConfig(stg).imagePullSecrets, ['ghcr-pull']);
    });

    it('finds the context across the kubeconfig files kubectl would merge, and names what it found otherwise', () => {
      const files: Record<string, string> = { a: stringify({ contexts: [{ name: 'dev' }] }), b: stringify({ contexts: [{ name: 'production' }] }) };
      const read = (p: string) => files[p];
      assert.equal(contextProblem('production', ['a', 'b'], read), undefined);
      assert.match(contextProblem('production', ['a'], read)!, /context "production" is not in a \(it has: dev\)/);
      assert.match(contextProblem('production', ['missing'], read)!, /no kubeconfig with contexts at missing/);
    });

    it('a managed Redis with tls needs a rediss:// URL (named, never echoed)', () => {
      const raw = {
        ...stackFile('staging'),
        redis: { mode: 'external', egressCidrs: ['10.0.0.0/24'], tls: { servername: 'redis.internal' } },
        providerApiKeys: { openai: 'sk-x' },
        clientKeyHashes: { 'staging-tester': `sha256:${'0'.repeat(64)}` },
        redisUrl: 'redis://:pw-not-echoed@h:6379',
      };
      assert.throws(
        () => parseStackConfig(raw),
        (err: StackConfigError) => {
          assert.deepEqual(err.problems, ['ai-gateway:redisUrl: redis.tls is set, so the URL must start with rediss://']);
          return true;
        },
      );
      assert.equal(parseStackConfig({ ...raw, redisUrl: 'rediss://:pw@h:6380' }).redis.mode, 'external');
    });

    it('imageBuild: the stack builds the Dockerfile, pushes with secret credentials, and the pods run the pushed digest', async () => {
      const manifest = join(tmp, 'build.json');
      const token = 'ghp-day2-registry-token';
      const build = ['--unset', 'image', '--set', 'imageBuild={repository: ghcr.io/example/ai-gateway, tag: 0.2.0, username: ci-bot}'];
      const r = await render('production', ...secretArgs(), ...build, '--set-secret', `registryPassword=${token}`, '--manifest', manifest);
      assert.equal(r.code, 0, r.stderr);
      const entries = JSON.parse(readFileSync(manifest, 'utf8')) as ManifestEntry[];
      const img = entries.filter((e) => e.type === 'docker-build:index:Image');
      assert.equal(img.length, 1);
      const inputs = img[0].inputs as Obj;
      assert.equal(inputs.context.location, ROOT);
      assert.equal(inputs.dockerfile.location, join(ROOT, 'Dockerfile'));
      assert.deepEqual(inputs.tags, ['ghcr.io/example/ai-gateway:0.2.0']);
      assert.equal(inputs.push, true);
      assert.equal(inputs.buildOnPreview, false);
      assert.deepEqual(inputs.registries, [{ address: 'ghcr.io', username: 'ci-bot', password: '<secret>' }], 'the registry password reaches the build only as a secret');
      assert.ok(![...r.files.values(), readFileSync(manifest, 'utf8')].some((t) => t.includes(token)));
      for (const { owner, template } of podTemplates(r).filter(({ owner }) => owner.kind !== 'StatefulSet')) {
        assert.match(template.spec.containers[0].image, /^ghcr\.io\/example\/ai-gateway@sha256:[0-9a-f]{64}$/, `${owner.kind} runs the pushed digest`);
      }
      // Off unless asked: the committed stacks register no build.
      assert.ok(!base.manifest.some((e) => e.type.startsWith('docker-build:')));
      const missing = await render('production', ...secretArgs(), ...build);
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /ai-gateway:registryPassword: missing secret for imageBuild\.username/);
    });

    it('imagePullSecrets reach the gateway and probe pods', async () => {
      const r = await render('production', ...secretArgs(), '--set', 'imagePullSecrets=[ghcr-pull]');
      assert.equal(r.code, 0, r.stderr);
      for (const { owner, template } of podTemplates(r).filter(({ owner }) => owner.kind !== 'StatefulSet')) {
        assert.deepEqual(template.spec.imagePullSecrets, [{ name: 'ghcr-pull' }], `${owner.kind}/${owner.metadata.name}`);
      }
    });
  });
});
