/**
 * The public route on Gateway API (the stacks' default) and ingress-nginx, its canary and rollback,
 * and the certificates that must be able to issue: each asserted against the rendered objects,
 * which also validate against the Gateway API and cert-manager schemas.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parseConfigText } from '../../service/config/load';
import { GATEWAY_API_VERSION } from '../../infra/gatewayApi';
import { durationMs } from '../../infra/validate';
import { Obj, RenderResult, cleanup, modelFor, named, ofKind, one, render, selects } from './helpers';

const CANARY_IMAGE = 'ghcr.io/example/ai-gateway:0.2.0@sha256:e100fbce008c04ec40637af0af91fb2f05aeedc23f856a2d3c0b1580625d755e';
/** The production stack after its transition from ingress-nginx (docs/deploy.md): Gateway API only. */
const GA = ['--set', 'route.kind=gateway-api'];
const CANARY = [...GA, '--set', `canary.image=${CANARY_IMAGE}`, '--set', 'canary.weight=5'];
/** The labels cert-manager puts on the ACME HTTP-01 solver pod it creates in the Certificate's namespace. */
const SOLVER_POD_LABELS = { 'acme.cert-manager.io/http01-solver': 'true', 'acme.cert-manager.io/http-domain': '1234', 'acme.cert-manager.io/http-token': '5678' };

let production: RenderResult;
let canary: RenderResult;
let canaryZero: RenderResult;
let canaryConfig: RenderResult;
let staging: RenderResult;
let nginx: RenderResult;
let nginxDns01: RenderResult;

const httpRoute = (r: RenderResult) => one(r, 'HTTPRoute', 'ai-gateway');
const ports = (rule: Obj) => rule.ports.map((p: Obj) => `${p.protocol}/${p.port}`).sort();
const fromNamespaces = (rule: Obj) => rule.from.map((f: Obj) => f.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name']);
const solverPolicy = (r: RenderResult) => ofKind(r, 'NetworkPolicy').filter((p) => selects(p.spec.podSelector, SOLVER_POD_LABELS) && Object.keys(p.spec.podSelector).length > 0);
/** Does some policy of the render admit a connection from `namespace` to the pods with `labels` on `port`? */
function admits(r: RenderResult, labels: Record<string, string>, namespace: string, port: number): boolean {
  return ofKind(r, 'NetworkPolicy').some(
    (p) =>
      selects(p.spec.podSelector, labels) &&
      (p.spec.ingress ?? []).some((rule: Obj) => fromNamespaces(rule).includes(namespace) && rule.ports.some((x: Obj) => x.port === port && x.protocol === 'TCP')),
  );
}

describe('infra: public route (Gateway API and ingress-nginx), canary, certificates', function () {
  this.timeout(400_000);

  before(async () => {
    [production, canary, canaryZero, canaryConfig, staging, nginx, nginxDns01] = await Promise.all([
      render('production', ...GA),
      render('production', ...CANARY),
      render('production', ...GA, '--set', `canary.image=${CANARY_IMAGE}`, '--set', 'canary.weight=0'),
      render('production', ...CANARY, '--set', 'canary.gateway={server: {log_level: debug}, routing: {max_retries: 0}}'),
      render('staging'),
      render('production', '--set', 'route.kind=ingress-nginx'),
      render('production', '--set', 'route.kind=ingress-nginx', '--set', 'route.tls.challenge=dns-01'),
    ]);
    for (const [name, r] of Object.entries({ production, canary, canaryZero, canaryConfig, staging, nginx, nginxDns01 })) assert.equal(r.code, 0, `render ${name} failed: ${r.stderr}`);
  });
  after(cleanup);

  it('Gateway API objects validate against the Gateway API and cert-manager schemas', async () => {
    const kinds = new Set<string>();
    for (const r of [production, canary, staging]) {
      for (const o of r.objects.filter((x) => x.apiVersion.startsWith('gateway.networking.k8s.io/') || x.apiVersion.startsWith('cert-manager.io/'))) {
        kinds.add(o.kind);
        const Model = await modelFor(o);
        assert.doesNotThrow(() => new Model(o).validate(), `${o.kind}/${o.metadata.name} is invalid`);
      }
    }
    assert.deepEqual([...kinds].sort(), ['Certificate', 'Gateway', 'HTTPRoute', 'Issuer']);
    // The schemas do catch what they cover: a Duration that is not GEP-2257 is refused.
    const Route = await modelFor(httpRoute(production));
    const broken = structuredClone(httpRoute(production));
    broken.spec.rules[0].timeouts.request = '1 hour';
    assert.throws(() => new Route(broken).validate(), /timeouts\/request/);
  });

  it('production renders an HTTPRoute on the shared Gateway: /v1 to the gateway Service, long stream timeouts, no Ingress', () => {
    const route = httpRoute(production);
    assert.equal(route.apiVersion, GATEWAY_API_VERSION);
    assert.deepEqual(route.spec.parentRefs, [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'shared-gateway', namespace: 'gateway-system', sectionName: 'https' }]);
    assert.deepEqual(route.spec.hostnames, ['gateway.example.com']);
    assert.equal(route.spec.rules.length, 1);
    const [rule] = route.spec.rules;
    assert.deepEqual(rule.matches, [{ path: { type: 'PathPrefix', value: '/v1' } }]);
    assert.deepEqual(rule.backendRefs, [{ group: '', kind: 'Service', name: 'ai-gateway', port: 80 }]);
    const svc = one(production, 'Service', 'ai-gateway');
    assert.ok(
      svc.spec.ports.some((p: Obj) => p.port === 80 && p.name === 'http'),
      'the backendRef port is the Service http port (never metrics)',
    );
    // SSE streams: the whole exchange and each backend call may last the stack's stream timeout.
    assert.equal(durationMs(rule.timeouts.request), 3600_000);
    assert.ok(durationMs(rule.timeouts.backendRequest) <= durationMs(rule.timeouts.request), 'backendRequest must not exceed request');
    assert.equal(ofKind(production, 'Ingress').length, 0);
    assert.equal(ofKind(production, 'Gateway').length, 0, 'a shared Gateway is not ours to create');
    // Only the shared Gateway's data plane (the envoy-gateway preset: its proxies' namespace) may reach the HTTP port.
    assert.ok(admits(production, one(production, 'Deployment', 'ai-gateway').spec.template.metadata.labels, 'envoy-gateway-system', 8080));
    assert.ok(!admits(production, one(production, 'Deployment', 'ai-gateway').spec.template.metadata.labels, 'gateway-system', 8080));
    assert.ok(!admits(production, one(production, 'Deployment', 'ai-gateway').spec.template.metadata.labels, 'ingress-nginx', 8080));
  });

  it('a shared Gateway holds its own certificate: no solver rule and no issuer in this namespace', () => {
    assert.equal(solverPolicy(production).length, 0);
    assert.equal(ofKind(production, 'Issuer').length, 0);
  });

  it('canary.weight=5 splits the one rule 95/5 by backendRefs weights between the stable and canary Services', () => {
    const route = httpRoute(canary);
    assert.equal(route.spec.rules.length, 1);
    const refs = route.spec.rules[0].backendRefs;
    assert.deepEqual(
      refs.map((b: Obj) => [b.name, b.port, b.weight]),
      [
        ['ai-gateway', 80, 95],
        ['ai-gateway-canary', 80, 5],
      ],
    );
    const canaryPods = one(canary, 'Deployment', 'ai-gateway-canary').spec.template.metadata.labels;
    const stablePods = one(canary, 'Deployment', 'ai-gateway').spec.template.metadata.labels;
    assert.ok(selects({ matchLabels: one(canary, 'Service', 'ai-gateway-canary').spec.selector }, canaryPods));
    assert.ok(!selects({ matchLabels: one(canary, 'Service', 'ai-gateway').spec.selector }, canaryPods), 'the stable backend must not include canary pods');
    assert.ok(!selects({ matchLabels: one(canary, 'Service', 'ai-gateway-canary').spec.selector }, stablePods));
    assert.equal(one(canary, 'Deployment', 'ai-gateway-canary').spec.template.spec.containers[0].image, CANARY_IMAGE);
    assert.equal(ofKind(canary, 'Ingress').length, 0, 'no nginx canary Ingress on Gateway API');
    assert.ok(admits(canary, canaryPods, 'envoy-gateway-system', 8080), 'the Gateway may reach the canary pods');
  });

  it('canary weight 0 renders exactly the no-canary objects (rollback)', () => {
    assert.deepEqual([...canaryZero.files.keys()].sort(), [...production.files.keys()].sort());
    for (const [file, text] of production.files) assert.equal(canaryZero.files.get(file), text, `${file} differs with canary weight 0`);
  });

  it('canary.gateway gives the canary pods their own config, checked by the gateway parser; the stable config is untouched', () => {
    const cm = named(canaryConfig, 'ConfigMap', 'ai-gateway-canary-config');
    const text = cm.data['config.yaml'] as string;
    const parsed = parseConfigText(
      text,
      Object.fromEntries([...text.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => [m[1], m[1].includes('HASH') ? `sha256:${createHash('sha256').update(m[1]).digest('hex')}` : 'x'])),
    );
    assert.equal(parsed.server.log_level, 'debug');
    assert.equal(parsed.routing.max_retries, 0);
    assert.equal(parsed.providers.length, 2, 'overrides merge into the gateway block (providers kept)');
    const stableText = named(canaryConfig, 'ConfigMap', 'ai-gateway-config').data['config.yaml'];
    assert.equal(stableText, named(production, 'ConfigMap', 'ai-gateway-config').data['config.yaml']);
    const pod = one(canaryConfig, 'Deployment', 'ai-gateway-canary').spec.template;
    assert.equal(pod.spec.volumes.find((v: Obj) => v.name === 'config').configMap.name, cm.metadata.name);
    assert.notEqual(pod.metadata.annotations['checksum/config'], one(canaryConfig, 'Deployment', 'ai-gateway').spec.template.metadata.annotations['checksum/config']);
  });

  it('a canary.gateway the gateway would reject fails the render, naming the canary key', async () => {
    const r = await render('production', ...CANARY, '--set', 'canary.gateway.routing.strategy=fastest');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ai-gateway:canary\.gateway\.routing\.strategy/);
    assert.equal(r.files.size, 0);
  });

  it('staging creates its own Gateway: HTTPS listener with the cert-manager certificate, HTTP for ACME and the redirect', () => {
    const gw = one(staging, 'Gateway', 'ai-gateway');
    assert.equal(gw.spec.gatewayClassName, 'eg');
    // The Certificate is the stack's own object (so `pulumi up` can wait for Ready), not gateway-shim's.
    assert.equal(gw.metadata.annotations?.['cert-manager.io/issuer'], undefined);
    const cert = one(staging, 'Certificate', 'gateway-staging-example-com-tls');
    assert.deepEqual(cert.spec, {
      secretName: 'gateway-staging-example-com-tls',
      dnsNames: ['gateway.staging.example.com'],
      issuerRef: { group: 'cert-manager.io', kind: 'Issuer', name: 'ai-gateway-acme' },
    });
    const https = gw.spec.listeners.find((l: Obj) => l.name === 'https');
    assert.deepEqual([https.protocol, https.port, https.hostname, https.tls.mode], ['HTTPS', 443, 'gateway.staging.example.com', 'Terminate']);
    assert.deepEqual(https.tls.certificateRefs, [{ group: '', kind: 'Secret', name: 'gateway-staging-example-com-tls' }]);
    const http = gw.spec.listeners.find((l: Obj) => l.name === 'http');
    assert.deepEqual([http.protocol, http.port], ['HTTP', 80]);
    assert.deepEqual(httpRoute(staging).spec.parentRefs, [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'ai-gateway', namespace: 'ai-gateway-staging', sectionName: 'https' }]);
    const redirect = one(staging, 'HTTPRoute', 'ai-gateway-https-redirect');
    assert.equal(redirect.spec.parentRefs[0].sectionName, 'http');
    assert.deepEqual(redirect.spec.rules[0].filters[0].requestRedirect, { scheme: 'https', statusCode: 301 });
  });

  it("the stack's ACME Issuer solves HTTP-01 through its own Gateway's HTTP listener, and the policies admit the solver from the proxies' namespace on 8089", () => {
    const issuer = one(staging, 'Issuer', 'ai-gateway-acme');
    assert.equal(issuer.spec.acme.server, 'https://acme-staging-v02.api.letsencrypt.org/directory');
    assert.deepEqual(issuer.spec.acme.solvers, [
      { http01: { gatewayHTTPRoute: { parentRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'ai-gateway', namespace: 'ai-gateway-staging', sectionName: 'http' }] } } },
    ]);
    assert.ok(admits(staging, SOLVER_POD_LABELS, 'envoy-gateway-system', 8089), 'the HTTP-01 solver pod is unreachable: the certificate would never issue');
    const [policy] = solverPolicy(staging);
    assert.deepEqual(policy.spec.egress, [], 'the solver only answers; it gets no egress');
    assert.ok(!selects(policy.spec.podSelector, one(staging, 'Deployment', 'ai-gateway').spec.template.metadata.labels), 'the solver rule must not open the gateway pods');
  });

  it('ingress-nginx mode keeps the nginx Ingress, admits the HTTP-01 solver from the controller namespace, and none for DNS-01', () => {
    const ing = one(nginx, 'Ingress', 'ai-gateway');
    assert.equal(ing.metadata.annotations['cert-manager.io/cluster-issuer'], 'letsencrypt-prod');
    assert.equal(ing.metadata.annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'], '3600');
    assert.equal(ofKind(nginx, 'HTTPRoute').length, 0);
    assert.ok(admits(nginx, SOLVER_POD_LABELS, 'ingress-nginx', 8089));
    assert.ok(admits(nginx, one(nginx, 'Deployment', 'ai-gateway').spec.template.metadata.labels, 'ingress-nginx', 8080));
    assert.equal(solverPolicy(nginxDns01).length, 0, 'a DNS-01 issuer needs no inbound rule');
    assert.ok(!admits(nginxDns01, SOLVER_POD_LABELS, 'ingress-nginx', 8089));
  });

  it("in ingress-nginx mode the stack's own ACME Issuer solves HTTP-01 through nginx", async () => {
    const r = await render('staging', '--set', 'route.kind=ingress-nginx');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(one(r, 'Issuer', 'ai-gateway-acme').spec.acme.solvers, [{ http01: { ingress: { ingressClassName: 'nginx' } } }]);
    assert.equal(one(r, 'Ingress', 'ai-gateway').metadata.annotations['cert-manager.io/issuer'], 'ai-gateway-acme');
    assert.ok(admits(r, SOLVER_POD_LABELS, 'ingress-nginx', 8089));
    assert.equal(ofKind(r, 'Gateway').length + ofKind(r, 'HTTPRoute').length, 0);
  });

  it('refuses route settings that cannot work, naming the key', async () => {
    const cases: [string[], RegExp][] = [
      [['--set', 'route.gateway={create: {className: eg}, parentRef: {name: g, namespace: n, sectionName: https}}'], /ai-gateway:route\.gateway: set exactly one of parentRef/],
      [['--set', 'route.dataPlane={kind: namespace, namespace: ai-gateway}'], /ai-gateway:route\.dataPlane\.namespace: must not be the stack's namespace/],
      [['--set', 'route.gateway.dataPlaneNamespace=gateway-system'], /ai-gateway:route\.gateway\.dataPlaneNamespace: replaced by route\.dataPlane/],
      [
        ['--set', 'route.gateway.parentRef={name: shared-gateway, namespace: gateway-system}'],
        /ai-gateway:route\.gateway\.parentRef\.sectionName: is required: the name of the Gateway's HTTPS listener/,
      ],
      [['--set', 'route.kind=ingress-nginx', '--set', 'route.tls={}'], /ai-gateway:route\.tls: the Ingress needs a certificate issuer/],
    ];
    for (const [args, expected] of cases) {
      const r = await render('production', ...args);
      assert.equal(r.code, 1, `${args.join(' ')} rendered`);
      assert.match(r.stderr, expected);
    }
  });
});
