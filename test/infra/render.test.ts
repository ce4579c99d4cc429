/**
 * Renders the staging and production stacks (and canary, rollback and managed-Redis variants) the way
 * `npm run render` does, and checks the objects a `pulumi up` would create. These renders use the
 * ingress-nginx route mode; the Gateway API mode (the stacks' default) is test/infra/route.test.ts's.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Registry } from 'prom-client';
import { parse as parseYaml } from 'yaml';
import { placeholderSecret } from '../../infra/config';
import { NON_PUBLIC_RANGES } from '../../infra/networkPolicies';
import { parseConfigText } from '../../service/config/load';
import { createMetrics } from '../../service/metrics/metrics';
import { Obj, RenderResult, cleanup, modelFor, named, ofKind, one, podTemplates, render, selects } from './helpers';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** Distinctive secret values fed to production; none may appear in any rendered file. */
const PROD_SECRETS: Record<string, string> = {
  'providerApiKeys.openai': 'sk-test-LEAKCHECK-openai-7f3a9c',
  'providerApiKeys.azure-east': 'azure-LEAKCHECK-key-51be20',
  'clientKeyHashes.search-backend': `sha256:${sha('LEAKCHECK-search')}`,
  'clientKeyHashes.support-bot': `sha256:${sha('LEAKCHECK-support')}`,
  'adminKeyHashes.platform-admin': `sha256:${sha('LEAKCHECK-admin')}`,
  redisPassword: 'redis-LEAKCHECK-password-0d93ab61',
  smokeProbeKey: 'sk-gw-LEAKCHECK-smoke-probe-6e1f',
};
const secretArgs = (secrets: Record<string, string>) => Object.entries(secrets).flatMap(([k, v]) => ['--set-secret', `${k}=${v}`]);
const CANARY_IMAGE = `ghcr.io/example/ai-gateway:0.2.0-rc.1@sha256:${sha('canary-image')}`;
/** The ingress-nginx route mode, with the ClusterIssuers these tests have always used. */
const NGINX = ['--set', 'route.kind=ingress-nginx'];
const NGINX_STAGING = [...NGINX, '--set', 'route.tls={clusterIssuer: letsencrypt-staging}'];

let staging: RenderResult;
let production: RenderResult;
let canary: RenderResult;
let canaryZero: RenderResult;
let external: RenderResult;
let stacks: [string, RenderResult][];

const configMapText = (r: RenderResult) => named(r, 'ConfigMap', 'ai-gateway-config').data['config.yaml'] as string;
const gatewayConfig = (r: RenderResult) => parseYaml(configMapText(r));
const deployment = (r: RenderResult, name = 'ai-gateway') => one(r, 'Deployment', name);
const isCanaryObject = (o: Obj) => o.metadata?.labels?.['app.kubernetes.io/track'] === 'canary' || o.metadata?.annotations?.['nginx.ingress.kubernetes.io/canary'] !== undefined;

describe('infra: rendered stacks', function () {
  this.timeout(400_000);

  before(async () => {
    [staging, production, canary, canaryZero, external] = await Promise.all([
      render('staging', ...NGINX_STAGING),
      render('production', ...NGINX, ...secretArgs(PROD_SECRETS)),
      render('production', ...NGINX, ...secretArgs(PROD_SECRETS), '--set', `canary.image=${CANARY_IMAGE}`, '--set', 'canary.weight=10'),
      render('production', ...NGINX, ...secretArgs(PROD_SECRETS), '--set', `canary.image=${CANARY_IMAGE}`, '--set', 'canary.weight=0'),
      render('staging', ...NGINX_STAGING, '--set', 'redis={mode: external, egressCidrs: [10.20.0.0/24], port: 6380}', '--set-secret', 'redisUrl=rediss://:LEAKCHECK-url-pass@redis.internal:6380'),
    ]);
    stacks = [
      ['staging', staging],
      ['production', production],
      ['production+canary', canary],
      ['staging+external redis', external],
    ];
    for (const [name, r] of [...stacks, ['production canary weight 0', canaryZero] as const]) {
      assert.equal(r.code, 0, `render ${name} failed: ${r.stderr}`);
    }
  });
  after(cleanup);

  it('every object validates against the Kubernetes / prometheus-operator OpenAPI schemas', async () => {
    for (const [name, r] of stacks) {
      assert.ok(r.objects.length >= 12, `${name}: only ${r.objects.length} objects`);
      for (const o of r.objects) {
        const Model = await modelFor(o);
        assert.doesNotThrow(() => new Model(o).validate(), `${name}: ${o.kind}/${o.metadata?.name} is invalid`);
        assert.ok(o.metadata?.name, `${name}: ${o.kind} without metadata.name`);
        if (!['Namespace', 'PriorityClass'].includes(o.kind)) assert.ok(o.metadata?.namespace, `${name}: ${o.kind}/${o.metadata.name} has no namespace`);
      }
    }
  });

  it('no container runs as root, holds capabilities, writes its root filesystem or lacks resource limits', () => {
    for (const [name, r] of stacks) {
      const templates = podTemplates(r);
      assert.ok(templates.length >= 1, `${name}: no pod templates`);
      for (const { owner, template } of templates) {
        const pod = template.spec;
        assert.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault', `${name}: ${owner.metadata.name} seccomp`);
        assert.equal(pod.automountServiceAccountToken, false, `${name}: ${owner.metadata.name} mounts an API token`);
        for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
          const where = `${name}: ${owner.metadata.name}/${c.name}`;
          const sc = c.securityContext ?? {};
          assert.ok(c.resources?.limits?.cpu && c.resources?.limits?.memory, `${where}: no cpu/memory limits`);
          assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${where}: no cpu/memory requests`);
          assert.equal(sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot, true, `${where}: may run as root`);
          assert.ok((sc.runAsUser ?? pod.securityContext?.runAsUser) > 0, `${where}: runAsUser must be a non-zero uid`);
          assert.equal(sc.readOnlyRootFilesystem, true, `${where}: writable root filesystem`);
          assert.equal(sc.allowPrivilegeEscalation, false, `${where}: privilege escalation allowed`);
          assert.deepEqual(sc.capabilities?.drop, ['ALL'], `${where}: capabilities not dropped`);
          assert.ok(!sc.capabilities?.add?.length, `${where}: adds capabilities`);
        }
      }
    }
  });

  it('serves every Ingress host over TLS, with the cert-manager issuer, body limit and SSE settings', () => {
    for (const [name, r] of stacks) {
      const ingresses = ofKind(r, 'Ingress');
      assert.ok(ingresses.length >= 1, `${name}: no Ingress`);
      for (const ing of ingresses) {
        const tlsHosts = (ing.spec.tls ?? []).flatMap((t: Obj) => t.hosts);
        for (const rule of ing.spec.rules) assert.ok(tlsHosts.includes(rule.host), `${name}: ${ing.metadata.name} serves ${rule.host} without TLS`);
        assert.ok(
          ing.spec.tls.every((t: Obj) => t.secretName),
          `${name}: TLS without a secretName`,
        );
        assert.equal(ing.spec.ingressClassName, 'nginx');
        const a = ing.metadata.annotations;
        assert.equal(a['nginx.ingress.kubernetes.io/proxy-buffering'], 'off', `${name}: SSE needs proxy-buffering off`);
        assert.ok(Number(a['nginx.ingress.kubernetes.io/proxy-read-timeout']) >= 600, `${name}: read timeout too short for streams`);
        const bodyLimit = gatewayConfig(r).server?.body_limit_bytes ?? 1_048_576;
        assert.equal(a['nginx.ingress.kubernetes.io/proxy-body-size'], `${Math.ceil(bodyLimit / 1024)}k`);
        // Only the HTTP port is routed: /metrics is never reachable through the Ingress.
        for (const p of ing.spec.rules.flatMap((rule: Obj) => rule.http.paths)) assert.equal(p.backend.service.port.name, 'http');
      }
      const stable = one(r, 'Ingress', 'ai-gateway');
      assert.match(stable.metadata.annotations['cert-manager.io/cluster-issuer'], /^letsencrypt-/);
    }
  });

  it('NetworkPolicies deny by default and select every pod', () => {
    for (const [name, r] of stacks) {
      const policies = ofKind(r, 'NetworkPolicy');
      const denyAll = policies.find((p) => Object.keys(p.spec.podSelector).length === 0 && !p.spec.ingress && !p.spec.egress);
      assert.ok(denyAll, `${name}: no default-deny policy`);
      assert.deepEqual([...denyAll.spec.policyTypes].sort(), ['Egress', 'Ingress']);
      for (const { owner, template } of podTemplates(r)) {
        const specific = policies.filter((p) => p !== denyAll && selects(p.spec.podSelector, template.metadata.labels));
        assert.ok(specific.length > 0, `${name}: pods of ${owner.kind}/${owner.metadata.name} are selected by no policy of their own`);
        for (const type of ['Ingress', 'Egress']) {
          assert.ok(
            specific.some((p) => p.spec.policyTypes.includes(type)),
            `${name}: ${owner.metadata.name} has no ${type} policy`,
          );
        }
      }
    }
  });

  it('lets the gateway out only to DNS, Redis and HTTPS on public addresses, and in only from nginx and Prometheus', () => {
    const gw = one(production, 'NetworkPolicy', 'ai-gateway-gateway');
    const ports = (rule: Obj) => rule.ports.map((p: Obj) => `${p.protocol}/${p.port}`).sort();
    assert.equal(gw.spec.egress.length, 3);
    const [dns, redis, https] = gw.spec.egress;
    assert.deepEqual(ports(dns), ['TCP/53', 'UDP/53']);
    assert.deepEqual(ports(redis), ['TCP/6379']);
    assert.ok(selects(redis.to[0].podSelector, one(production, 'StatefulSet', 'redis').spec.template.metadata.labels));
    assert.deepEqual(ports(https), ['TCP/443']);
    assert.equal(https.to[0].ipBlock.cidr, '0.0.0.0/0');
    for (const range of ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16']) assert.ok(https.to[0].ipBlock.except.includes(range), `443 egress must exclude ${range}`);
    assert.deepEqual(https.to[0].ipBlock.except, NON_PUBLIC_RANGES);

    const [fromNginx, fromPrometheus] = gw.spec.ingress;
    assert.deepEqual(fromNginx.from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }]);
    assert.deepEqual(ports(fromNginx), ['TCP/8080']);
    assert.deepEqual(fromPrometheus.from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
    assert.deepEqual(ports(fromPrometheus), ['TCP/9090']);

    const redisPolicy = one(production, 'NetworkPolicy', 'ai-gateway-redis');
    assert.equal(redisPolicy.spec.ingress.length, 1);
    assert.ok(selects(redisPolicy.spec.ingress[0].from[0].podSelector, deployment(production).spec.template.metadata.labels), 'Redis must admit the gateway pods');
    assert.ok(selects(redisPolicy.spec.ingress[0].from[0].podSelector, deployment(canary, 'ai-gateway-canary').spec.template.metadata.labels), 'Redis must admit the canary pods');
    assert.deepEqual(redisPolicy.spec.egress, []);
  });

  it('keeps every secret out of ConfigMaps and rendered files, and redacts the Secret', () => {
    // Staging sets no secrets: the renderer fills placeholders, which must stay out of the files just the same.
    assert.match(staging.stdout, /placeholders for secrets not set: providerApiKeys\.openai, clientKeyHashes\.staging-tester, redisPassword/);
    const stagingPlaceholders = [
      placeholderSecret({ key: 'providerApiKeys', entry: 'openai', kind: 'apiKey' }),
      placeholderSecret({ key: 'clientKeyHashes', entry: 'staging-tester', kind: 'keyHash' }),
      placeholderSecret({ key: 'redisPassword', kind: 'password' }),
    ];
    const checks: [string, RenderResult, string[]][] = [
      ['production', production, Object.values(PROD_SECRETS)],
      ['production+canary', canary, Object.values(PROD_SECRETS)],
      ['staging', staging, stagingPlaceholders],
      ['staging+external redis', external, ['LEAKCHECK-url-pass']],
    ];
    for (const [name, r, secrets] of checks) {
      assert.ok(secrets.length > 0);
      for (const [file, text] of r.files) for (const s of secrets) assert.ok(!text.includes(s), `${name}: a secret value appears in ${file}`);
      for (const secret of ofKind(r, 'Secret')) {
        assert.ok(Object.keys(secret.stringData).length > 0);
        for (const v of Object.values(secret.stringData)) assert.equal(v, '<redacted>');
      }
      assert.ok(named(r, 'Secret', 'ai-gateway-secrets'));
    }
    assert.match(configMapText(production), /api_key: \$\{PROVIDER_OPENAI_API_KEY\}/);
    assert.match(configMapText(production), /hash: \$\{CLIENT_KEY_HASH_SEARCH_BACKEND\}/);
  });

  it("the ConfigMap's config passes the gateway's own parser, each ${VAR} backed by a Secret key", () => {
    for (const [name, r] of stacks) {
      const text = configMapText(r);
      const gatewaySecret = named(r, 'Secret', 'ai-gateway-secrets');
      const secretKeys = Object.keys(gatewaySecret.stringData);
      const refs = [...text.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]);
      assert.ok(refs.length > 0, `${name}: no secret references`);
      for (const ref of refs) assert.ok(secretKeys.includes(ref), `${name}: \${${ref}} has no key in the Secret`);
      const env = Object.fromEntries(secretKeys.map((k) => [k, k.includes('HASH') ? `sha256:${sha(k)}` : k.startsWith('REDIS_URL') ? 'rediss://:x@h:6380' : `value-of-${k}`]));
      const parsed = parseConfigText(text, env);
      assert.equal(parsed.server.port, 8080);
      const d = deployment(r);
      assert.equal(d.spec.template.metadata.annotations['checksum/config'], sha(text), `${name}: checksum/config must be the config's sha256 so a change rolls the pods`);
      assert.deepEqual(d.spec.template.spec.containers[0].envFrom, [{ secretRef: { name: gatewaySecret.metadata.name } }]);
    }
  });

  it('runs the gateway with probes, a drain-length grace period, spread, PDB, HPA and both ports', () => {
    for (const [name, r] of stacks) {
      const d = deployment(r);
      const pod = d.spec.template.spec;
      const c = pod.containers[0];
      assert.deepEqual(c.command, ['node', '--max-semi-space-size=16', 'dist/service/main.js', '--config', '/etc/gateway/config.yaml']);
      assert.equal(c.livenessProbe.httpGet.path, '/health');
      assert.equal(c.readinessProbe.httpGet.path, '/ready');
      const preStop = Number(c.lifecycle.preStop.exec.command[1]);
      assert.ok(preStop >= 5, `${name}: preStop delay ${preStop}s`);
      const grace = gatewayConfig(r).server?.shutdown_grace_ms ?? 30_000;
      assert.ok(pod.terminationGracePeriodSeconds > preStop + grace / 1000, `${name}: grace ${pod.terminationGracePeriodSeconds}s does not cover preStop + drain`);
      assert.ok(pod.topologySpreadConstraints.some((t: Obj) => t.topologyKey === 'kubernetes.io/hostname' && selects(t.labelSelector, d.spec.template.metadata.labels)));
      assert.ok(pod.volumes.some((v: Obj) => v.name === 'tmp' && v.emptyDir) && c.volumeMounts.some((m: Obj) => m.mountPath === '/tmp'), `${name}: no writable /tmp`);
      assert.ok(selects(d.spec.selector, d.spec.template.metadata.labels));

      const svc = one(r, 'Service', 'ai-gateway');
      assert.deepEqual(
        svc.spec.ports.map((p: Obj) => p.name),
        ['http', 'metrics'],
      );
      assert.ok(selects({ matchLabels: svc.spec.selector }, d.spec.template.metadata.labels));
      const pdb = one(r, 'PodDisruptionBudget', 'ai-gateway');
      assert.ok(selects(pdb.spec.selector, d.spec.template.metadata.labels));

      const hpa = one(r, 'HorizontalPodAutoscaler', 'ai-gateway');
      assert.equal(hpa.apiVersion, 'autoscaling/v2');
      assert.equal(hpa.spec.scaleTargetRef.name, 'ai-gateway');
      assert.deepEqual(hpa.spec.metrics.map((m: Obj) => m.resource.name).sort(), ['cpu', 'memory']);
      assert.equal(d.spec.replicas, undefined, `${name}: with an HPA the Deployment must not pin replicas`);
    }
  });

  it('staging and production differ where they should', () => {
    const hpa = (r: RenderResult) => one(r, 'HorizontalPodAutoscaler', 'ai-gateway').spec;
    assert.deepEqual([hpa(staging).minReplicas, hpa(staging).maxReplicas], [1, 3]);
    assert.deepEqual([hpa(production).minReplicas, hpa(production).maxReplicas], [3, 12]);
    const ing = (r: RenderResult) => one(r, 'Ingress', 'ai-gateway');
    assert.equal(ing(staging).spec.rules[0].host, 'gateway.staging.example.com');
    assert.equal(ing(production).spec.rules[0].host, 'gateway.example.com');
    assert.equal(ing(staging).metadata.annotations['cert-manager.io/cluster-issuer'], 'letsencrypt-staging');
    assert.equal(ing(production).metadata.annotations['cert-manager.io/cluster-issuer'], 'letsencrypt-prod');

    const redis = (r: RenderResult) => one(r, 'StatefulSet', 'redis').spec;
    assert.deepEqual(redis(staging).volumeClaimTemplates, []);
    assert.ok(redis(staging).template.spec.volumes.some((v: Obj) => v.name === 'data' && v.emptyDir));
    assert.equal(redis(production).volumeClaimTemplates[0].spec.resources.requests.storage, '5Gi');
    assert.ok(redis(production).template.spec.containers[0].args.join(' ').includes('--appendonly yes'));

    const [s, p] = [gatewayConfig(staging), gatewayConfig(production)];
    assert.equal(s.server.log_level, 'debug');
    assert.equal(p.server.log_level, 'info');
    // Both are on public hosts: both need keys (staging's testers share one).
    assert.equal(s.auth.mode, 'keys');
    assert.deepEqual(
      s.auth.keys.map((k: Obj) => [k.name, k.team]),
      [['staging-tester', 'staging']],
    );
    assert.equal(p.auth.mode, 'keys');
    assert.notDeepEqual(
      s.teams.map((t: Obj) => t.budget),
      p.teams.map((t: Obj) => t.budget),
    );
    assert.equal(one(staging, 'Namespace', 'ai-gateway-staging').metadata.labels['ai-gateway/environment'], 'staging');
    assert.equal(one(production, 'Namespace', 'ai-gateway').metadata.labels['ai-gateway/environment'], 'production');
  });

  it('a canary adds a second Deployment and an nginx canary Ingress with the weight; the stable track is untouched', () => {
    const cd = deployment(canary, 'ai-gateway-canary');
    assert.equal(cd.spec.template.spec.containers[0].image, CANARY_IMAGE);
    assert.equal(cd.spec.replicas, 1);
    assert.equal(deployment(canary).spec.template.spec.containers[0].image, deployment(production).spec.template.spec.containers[0].image);
    const svc = one(canary, 'Service', 'ai-gateway-canary');
    assert.ok(selects({ matchLabels: svc.spec.selector }, cd.spec.template.metadata.labels));
    assert.ok(!selects({ matchLabels: one(canary, 'Service', 'ai-gateway').spec.selector }, cd.spec.template.metadata.labels), 'the stable Service must not send traffic to the canary');
    const ing = one(canary, 'Ingress', 'ai-gateway-canary');
    assert.equal(ing.metadata.annotations['nginx.ingress.kubernetes.io/canary'], 'true');
    assert.equal(ing.metadata.annotations['nginx.ingress.kubernetes.io/canary-weight'], '10');
    assert.equal(ing.metadata.annotations['cert-manager.io/cluster-issuer'], undefined, 'only the stable Ingress owns the certificate');
    assert.equal(ing.spec.rules[0].host, one(canary, 'Ingress', 'ai-gateway').spec.rules[0].host);
    assert.equal(ing.spec.rules[0].http.paths[0].backend.service.name, 'ai-gateway-canary');
    assert.ok(!ofKind(canary, 'HorizontalPodAutoscaler').some((h) => h.spec.scaleTargetRef.name === 'ai-gateway-canary'));
    assert.ok(!production.objects.some(isCanaryObject), 'no canary block must mean no canary objects');
  });

  it('canary weight 0 renders exactly the objects of no canary (rollback)', () => {
    assert.ok(!canaryZero.objects.some(isCanaryObject));
    assert.deepEqual([...canaryZero.files.keys()].sort(), [...production.files.keys()].sort());
    for (const [file, text] of production.files) assert.equal(canaryZero.files.get(file), text, `${file} differs with canary weight 0`);
  });

  it('monitors the metrics port and alerts on spend, errors, p99 latency and open circuits using metrics the gateway exports', async () => {
    const registry = new Registry();
    createMetrics(registry, { defaultMetrics: false });
    const exported = new Set((await registry.getMetricsAsJSON()).flatMap((m) => (m.type === ('histogram' as never) ? [`${m.name}_bucket`, `${m.name}_count`, `${m.name}_sum`] : [m.name])));
    const used = (expr: string) => [...expr.matchAll(/\b(aigw_[a-z_]+)/g)].map((m) => m[1]);

    for (const [name, r, spend] of [
      ['staging', staging, 50],
      ['production', production, 500],
    ] as const) {
      const sm = one(r, 'ServiceMonitor', 'ai-gateway');
      assert.deepEqual(
        sm.spec.endpoints.map((e: Obj) => [e.port, e.path]),
        [['metrics', '/metrics']],
      );
      assert.ok(selects(sm.spec.selector, one(r, 'Service', 'ai-gateway').metadata.labels));
      assert.equal(sm.metadata.labels.release, 'kube-prometheus-stack');

      const rules = one(r, 'PrometheusRule', 'ai-gateway').spec.groups.flatMap((g: Obj) => g.rules) as Obj[];
      const byName = new Map(rules.map((x) => [x.alert, x]));
      assert.match(byName.get('AIGatewayDailySpendHigh')?.expr, new RegExp(`aigw_cost_usd_total.*\\[24h\\]\\)\\) > ${spend}$`), `${name}: spend alert threshold`);
      assert.match(byName.get('AIGatewayHighErrorRate')?.expr, /status_class="5xx"/);
      assert.match(byName.get('AIGatewayHighP99Latency')?.expr, /histogram_quantile\(0\.99, .*aigw_request_duration_seconds_bucket/);
      assert.match(byName.get('AIGatewayCircuitOpen')?.expr, /aigw_circuit_state\{[^}]*\}\) == 2$/);

      const dash = ofKind(r, 'ConfigMap').find((c) => c.metadata.labels?.grafana_dashboard === '1');
      assert.ok(dash, `${name}: no Grafana dashboard ConfigMap`);
      const json = JSON.parse(Object.values(dash.data)[0] as string);
      const exprs = [...rules.map((x) => x.expr as string), ...json.panels.flatMap((p: Obj) => p.targets.map((t: Obj) => t.expr as string))];
      for (const expr of exprs) for (const metric of used(expr)) assert.ok(exported.has(metric), `${name}: ${metric} is not a metric the gateway exports`);
      for (const expr of exprs) assert.ok(expr.includes(`namespace="${sm.metadata.namespace}"`), `${name}: query not scoped to the stack's namespace: ${expr}`);
    }
  });

  it('a managed Redis replaces the StatefulSet with an egress rule to its CIDR and a URL from the Secret', () => {
    assert.equal(ofKind(external, 'StatefulSet').length, 0);
    assert.equal(gatewayConfig(external).redis.url, '${REDIS_URL}');
    assert.ok('REDIS_URL' in named(external, 'Secret', 'ai-gateway-secrets').stringData);
    const redisEgress = one(external, 'NetworkPolicy', 'ai-gateway-gateway').spec.egress[1];
    assert.deepEqual(redisEgress, { to: [{ ipBlock: { cidr: '10.20.0.0/24' } }], ports: [{ protocol: 'TCP', port: 6380 }] });
  });
});
