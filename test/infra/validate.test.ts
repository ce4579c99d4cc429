/**
 * The checks schemas miss (infra/validate.ts), run by `npm run render` on every render: the committed
 * stacks pass them, and each kind of breakage in a rendered object is reported, naming the object.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parsePlainStackConfig, StackConfig } from '../../infra/config';
import { checkRendered, labelProblem } from '../../infra/validate';
import { checkSchemas } from '../../infra/validateSchemas';
import { Obj, ROOT, RenderResult, cleanup, render } from './helpers';

function stackConfig(stack: string, patch: (raw: Obj) => void = () => undefined): StackConfig {
  const doc = parseYaml(readFileSync(join(ROOT, 'stacks', `Pulumi.${stack}.yaml`), 'utf8')) as { config: Obj };
  const raw = Object.fromEntries(Object.entries(doc.config).map(([k, v]) => [k.replace(/^ai-gateway:/, ''), v]));
  patch(raw);
  return parsePlainStackConfig(raw);
}

describe('infra: checks on rendered objects beyond the schemas', function () {
  this.timeout(400_000);
  let production: RenderResult;
  let canary: RenderResult;
  let staging: RenderResult;
  const canaryPatch = (raw: Obj) => (raw.canary = { image: 'ghcr.io/example/ai-gateway:0.2.0@sha256:e100fbce008c04ec40637af0af91fb2f05aeedc23f856a2d3c0b1580625d755e', weight: 5 });

  before(async () => {
    [production, canary, staging] = await Promise.all([
      render('production'),
      render('production', '--set', 'canary.image=ghcr.io/example/ai-gateway:0.2.0@sha256:e100fbce008c04ec40637af0af91fb2f05aeedc23f856a2d3c0b1580625d755e', '--set', 'canary.weight=5'),
      render('staging'),
    ]);
    for (const r of [production, canary, staging]) assert.equal(r.code, 0, r.stderr);
  });
  after(cleanup);

  it('the committed stacks (and a canary) pass every check and every schema', async () => {
    assert.deepEqual(checkRendered(production.objects, stackConfig('production')), []);
    assert.deepEqual(checkRendered(canary.objects, stackConfig('production', canaryPatch)), []);
    assert.deepEqual(checkRendered(staging.objects, stackConfig('staging')), []);
    for (const r of [production, canary, staging]) assert.deepEqual(await checkSchemas(r.objects), []);
  });

  /** A copy of the canary render with one object changed; the problems found must include `expected`. */
  function broken(kind: string, name: string, change: (o: Obj) => void, expected: RegExp) {
    const objects = structuredClone(canary.objects);
    const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
    assert.ok(o, `no ${kind}/${name}`);
    change(o);
    const problems = checkRendered(objects, stackConfig('production', canaryPatch));
    assert.ok(
      problems.some((p) => expected.test(p)),
      `expected ${expected} among:\n${problems.join('\n')}`,
    );
  }

  it('finds a Service, PDB or Deployment selector that selects the wrong pods', () => {
    broken('Service', 'ai-gateway', (s) => (s.spec.selector['app.kubernetes.io/component'] = 'gatewy'), /^Service\/ai-gateway: selector selects no pod/);
    broken('Service', 'ai-gateway', (s) => delete s.spec.selector['app.kubernetes.io/track'], /^Service\/ai-gateway: selector selects pods of several tracks \(canary, stable\)/);
    broken('PodDisruptionBudget', 'ai-gateway', (p) => (p.spec.selector.matchLabels['app.kubernetes.io/name'] = 'other'), /^PodDisruptionBudget\/ai-gateway: selector selects no pod/);
    broken('Deployment', 'ai-gateway', (d) => (d.spec.selector.matchLabels['app.kubernetes.io/track'] = 'canary'), /^Deployment\/ai-gateway: spec\.selector does not select its own pod template/);
    broken('ServiceMonitor', 'ai-gateway', (m) => (m.spec.selector.matchLabels = { app: 'nope' }), /^ServiceMonitor\/ai-gateway: selector selects no Service/);
  });

  it('finds an HPA whose minimum is above its maximum or whose target is missing', () => {
    broken('HorizontalPodAutoscaler', 'ai-gateway', (h) => (h.spec.minReplicas = 20), /minReplicas 20 is above maxReplicas 12/);
    broken('HorizontalPodAutoscaler', 'ai-gateway', (h) => (h.spec.scaleTargetRef.name = 'gone'), /scaleTargetRef Deployment\/gone is not in the render/);
  });

  it('finds CIDRs that do not parse or excepts outside their block', () => {
    broken('NetworkPolicy', 'ai-gateway-gateway', (p) => (p.spec.egress.at(-1).to[0].ipBlock.cidr = '0.0.0.0/33'), /ipBlock 0\.0\.0\.0\/33 is not a valid CIDR/);
    broken(
      'NetworkPolicy',
      'ai-gateway-gateway',
      (p) => (p.spec.egress.at(-1).to[0].ipBlock = { cidr: '10.0.0.0/16', except: ['10.1.0.0/24'] }),
      /except 10\.1\.0\.0\/24 is not inside 10\.0\.0\.0\/16/,
    );
  });

  it('finds invalid label keys and values', () => {
    assert.equal(labelProblem('app.kubernetes.io/name', 'ai-gateway'), undefined);
    assert.match(labelProblem('release', 'kube prometheus')!, /value "kube prometheus"/);
    assert.match(labelProblem('release', 'x'.repeat(64))!, /at most 63/);
    assert.match(labelProblem('Bad_Prefix/name', 'v')!, /prefix must be a DNS subdomain/);
    broken('ServiceMonitor', 'ai-gateway', (m) => (m.metadata.labels.release = '-bad-'), /^ServiceMonitor\/ai-gateway metadata\.labels: label "release": value "-bad-"/);
  });

  it('finds NetworkPolicy peers that exist neither in the render nor in the stack config', () => {
    broken(
      'NetworkPolicy',
      'ai-gateway-gateway',
      (p) => (p.spec.ingress[0].from[0].namespaceSelector.matchLabels['kubernetes.io/metadata.name'] = 'ingres-nginx'),
      /ingress\[0\]\.from\[0\]: namespace "ingres-nginx" is neither in the render nor named by the stack config/,
    );
    broken(
      'NetworkPolicy',
      'ai-gateway-redis',
      (p) => (p.spec.ingress[0].from[0].podSelector.matchLabels['app.kubernetes.io/component'] = 'gw'),
      /ai-gateway-redis ingress\[0\]\.from\[0\]: podSelector .* selects no pod of the render/,
    );
    broken('NetworkPolicy', 'ai-gateway-redis', (p) => (p.spec.podSelector.matchLabels['app.kubernetes.io/component'] = 'cache'), /ai-gateway-redis: podSelector selects no pod/);
  });

  it('finds HTTPRoute backends, parents and timeouts that do not fit', () => {
    broken('HTTPRoute', 'ai-gateway', (r) => (r.spec.rules[0].backendRefs[1].name = 'ai-gateway-canry'), /backendRef ai-gateway-canry:80 is not a Service port/);
    broken('HTTPRoute', 'ai-gateway', (r) => (r.spec.rules[0].backendRefs[0].port = 9999), /backendRef ai-gateway:9999 is not a Service port/);
    broken('HTTPRoute', 'ai-gateway', (r) => r.spec.rules[0].backendRefs.forEach((b: Obj) => (b.weight = 0)), /weights sum to 0/);
    broken('HTTPRoute', 'ai-gateway', (r) => (r.spec.rules[0].timeouts = { request: '60s', backendRequest: '1h' }), /backendRequest 1h exceeds timeouts\.request 60s/);
    broken('HTTPRoute', 'ai-gateway', (r) => (r.spec.parentRefs[0].namespace = 'elsewhere'), /parent Gateway elsewhere\/shared-gateway is neither in the render nor named/);
  });

  it("finds a BackendTrafficPolicy that breaks Envoy Gateway's CEL rules or targets a route not in the render", async () => {
    broken('BackendTrafficPolicy', 'ai-gateway', (p) => (p.spec.targetRefs[0].name = 'ai-gateway-old'), /^BackendTrafficPolicy\/ai-gateway: targetRefs must name HTTPRoutes of the render/);
    broken(
      'BackendTrafficPolicy',
      'ai-gateway',
      (p) => (p.spec.targetRefs = [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'shared-gateway' }]),
      /mergeType must be StrategicMerge or JSONMerge, with route targets only/,
    );
    broken('BackendTrafficPolicy', 'ai-gateway', (p) => (p.spec.mergeType = 'Replace'), /mergeType must be StrategicMerge or JSONMerge/);
    broken('BackendTrafficPolicy', 'ai-gateway', (p) => (p.spec.loadBalancer.type = 'Random'), /slowStart needs a RoundRobin, LeastRequest or BackendUtilization load balancer/);
    // What the packaged schema (@kubernetes-models/envoy-gateway) does check: the window is a Gateway API duration.
    const objects = structuredClone(canary.objects);
    objects.find((o) => o.kind === 'BackendTrafficPolicy')!.spec.loadBalancer.slowStart.window = '30 seconds';
    assert.match((await checkSchemas(objects)).join('\n'), /BackendTrafficPolicy\/ai-gateway: .*window must match pattern/);
  });

  it('a rendered object that fails a check fails `npm run render`, writing nothing', async () => {
    // Stack config accepts any string as a rule label value; the label syntax check does not.
    const r = await render('production', '--set', 'monitoring.ruleLabels={release: "kube prometheus"}');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /rendered objects failed validation, nothing written:\n {2}- ServiceMonitor\/ai-gateway metadata\.labels: label "release": value "kube prometheus"/);
    assert.equal(r.files.size, 0);
  });
});
