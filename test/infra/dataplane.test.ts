/**
 * Issue 23, points 1 and 2: the transition from ingress-nginx to Gateway API (both routes, both
 * admission sources), the data plane as a required choice (namespace and labels, CIDRs, presets for
 * Envoy Gateway, Cilium and GKE), and `pulumi.com/waitFor` on the HTTPRoute and the Certificate.
 */
import assert from 'node:assert/strict';
import { dataPlaneSchema, GKE_FRONTEND_RANGES } from '../../infra/dataPlane';
import { Obj, RenderResult, cleanup, ofKind, one, render, selects } from './helpers';

const GA = ['--set', 'route.kind=gateway-api'];
let transition: RenderResult;
let gatewayApi: RenderResult;
let custom: RenderResult;
let cidrs: RenderResult;
let cilium: RenderResult;
let ciliumOwn: RenderResult;
let gke: RenderResult;

const gatewayPods = (r: RenderResult) => one(r, 'Deployment', 'ai-gateway').spec.template.metadata.labels;
/** The `from` peers of the gateway policy's rule on the HTTP port. */
function httpPeers(r: RenderResult): Obj[] {
  const policy = one(r, 'NetworkPolicy', 'ai-gateway-gateway');
  return policy.spec.ingress.filter((rule: Obj) => rule.ports.some((p: Obj) => p.port === 8080)).flatMap((rule: Obj) => rule.from);
}
const peerNamespace = (p: Obj) => p.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'];

describe('infra: data plane, ingress-nginx -> Gateway API transition, waitFor', function () {
  this.timeout(400_000);

  before(async () => {
    [transition, gatewayApi, custom, cidrs, cilium, ciliumOwn, gke] = await Promise.all([
      render('production'),
      render('production', ...GA),
      render('production', ...GA, '--set', 'route.dataPlane={kind: namespace, namespace: gateway-system, podLabels: {app: shared-proxy}}'),
      render('production', ...GA, '--set', 'route.dataPlane={kind: cidrs, cidrs: [10.8.0.0/24, 10.9.0.0/24]}'),
      render('production', ...GA, '--set', 'route.dataPlane={kind: cilium}'),
      render('staging', '--set', 'route.dataPlane={kind: cilium}'),
      render('production', ...GA, '--set', 'route.dataPlane={kind: gke, proxyOnlySubnetCidrs: [10.129.0.0/23]}'),
    ]);
    for (const [name, r] of Object.entries({ transition, gatewayApi, custom, cidrs, cilium, ciliumOwn, gke })) assert.equal(r.code, 0, `render ${name} failed: ${r.stderr}`);
  });
  after(cleanup);

  it('transition renders both routes to the same Service, and admits both the nginx controller and the Gateway proxies', () => {
    const ing = one(transition, 'Ingress', 'ai-gateway');
    const route = one(transition, 'HTTPRoute', 'ai-gateway');
    assert.equal(ing.spec.rules[0].host, route.spec.hostnames[0]);
    assert.equal(ing.spec.rules[0].http.paths[0].backend.service.name, route.spec.rules[0].backendRefs[0].name);
    // The Ingress keeps its certificate (and its cert-manager annotation) while DNS still points at nginx.
    assert.equal(ing.metadata.annotations['cert-manager.io/cluster-issuer'], 'letsencrypt-prod');
    assert.deepEqual(httpPeers(transition).map(peerNamespace).sort(), ['envoy-gateway-system', 'ingress-nginx']);
    // HTTP-01 for the Ingress's certificate still goes through nginx during the transition.
    const solver = one(transition, 'NetworkPolicy', 'ai-gateway-acme-http01-solver');
    assert.deepEqual(solver.spec.ingress[0].from.map(peerNamespace), ['ingress-nginx']);
  });

  it('the later `up` with route.kind gateway-api removes the Ingress and the nginx admission, nothing else of the route', () => {
    assert.equal(ofKind(gatewayApi, 'Ingress').length, 0);
    assert.deepEqual(httpPeers(gatewayApi).map(peerNamespace), ['envoy-gateway-system']);
    assert.deepEqual(one(gatewayApi, 'HTTPRoute', 'ai-gateway').spec, one(transition, 'HTTPRoute', 'ai-gateway').spec);
  });

  it('transition with a canary splits both routes: weighted backendRefs and the nginx canary Ingress', async () => {
    const image = `ghcr.io/example/ai-gateway:0.2.0@sha256:${'ab'.repeat(32)}`;
    const r = await render('production', '--set', `canary.image=${image}`, '--set', 'canary.weight=10');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      one(r, 'HTTPRoute', 'ai-gateway').spec.rules[0].backendRefs.map((b: Obj) => b.weight),
      [90, 10],
    );
    assert.equal(one(r, 'Ingress', 'ai-gateway-canary').metadata.annotations['nginx.ingress.kubernetes.io/canary-weight'], '10');
  });

  it('envoy-gateway preset admits only the proxies of the parent Gateway, in envoy-gateway-system', () => {
    assert.deepEqual(httpPeers(gatewayApi), [
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'envoy-gateway-system' } },
        podSelector: { matchLabels: { 'gateway.envoyproxy.io/owning-gateway-name': 'shared-gateway', 'gateway.envoyproxy.io/owning-gateway-namespace': 'gateway-system' } },
      },
    ]);
  });

  it('envoy-gateway preset: a BackendTrafficPolicy on the HTTPRoute ramps each new replica up over 30 s, merged into a Gateway-level policy', () => {
    for (const r of [gatewayApi, transition]) {
      const btp = one(r, 'BackendTrafficPolicy', 'ai-gateway');
      const route = one(r, 'HTTPRoute', 'ai-gateway');
      assert.equal(btp.apiVersion, 'gateway.envoyproxy.io/v1alpha1');
      assert.equal(btp.metadata.namespace, route.metadata.namespace, 'a policy targets routes of its own namespace');
      // `pulumi up` waits for Envoy Gateway to accept it, as it waits for the route.
      assert.equal(btp.metadata.annotations['pulumi.com/waitFor'], 'jsonpath={.status.ancestors[0].conditions[?(@.type=="Accepted")].status}=True');
      assert.deepEqual(btp.spec, {
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: route.metadata.name }],
        mergeType: 'StrategicMerge',
        loadBalancer: { type: 'LeastRequest', slowStart: { window: '30s' } },
      });
    }
    for (const r of [custom, cidrs, cilium, gke]) assert.equal(ofKind(r, 'BackendTrafficPolicy').length, 0, 'only the envoy-gateway preset renders it');
  });

  it('envoy-gateway preset: slowStartSeconds sets the window, 0 renders no policy, and a bad value is refused', async () => {
    const [longer, off] = await Promise.all([
      render('production', ...GA, '--set', 'route.dataPlane={kind: envoy-gateway, slowStartSeconds: 90}'),
      render('production', ...GA, '--set', 'route.dataPlane={kind: envoy-gateway, slowStartSeconds: 0}'),
    ]);
    assert.equal(longer.code, 0, longer.stderr);
    assert.equal(one(longer, 'BackendTrafficPolicy', 'ai-gateway').spec.loadBalancer.slowStart.window, '90s');
    assert.equal(off.code, 0, off.stderr);
    assert.equal(ofKind(off, 'BackendTrafficPolicy').length, 0);
    assert.deepEqual(httpPeers(off), httpPeers(gatewayApi), 'the peers do not depend on the slow start');
    for (const bad of [-5, 1.5, 3601, '30s'])
      assert.deepEqual(
        dataPlaneSchema.safeParse({ kind: 'envoy-gateway', slowStartSeconds: bad }).error?.issues.map((i) => i.path),
        [['slowStartSeconds']],
        `slowStartSeconds ${bad} accepted`,
      );
  });

  it('a namespace with pod labels, or CIDRs, render exactly those peers', () => {
    assert.deepEqual(httpPeers(custom), [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'gateway-system' } }, podSelector: { matchLabels: { app: 'shared-proxy' } } }]);
    assert.deepEqual(httpPeers(cidrs), [{ ipBlock: { cidr: '10.8.0.0/24' } }, { ipBlock: { cidr: '10.9.0.0/24' } }]);
  });

  it('cilium: no NetworkPolicy peer can name the ingress identity, so a CiliumNetworkPolicy admits fromEntities [ingress] to the HTTP port', () => {
    assert.deepEqual(httpPeers(cilium), []);
    const cnp = one(cilium, 'CiliumNetworkPolicy', 'ai-gateway-gateway-from-cilium-ingress');
    assert.equal(cnp.apiVersion, 'cilium.io/v2');
    assert.ok(selects(cnp.spec.endpointSelector, gatewayPods(cilium)));
    assert.ok(selects(cnp.spec.endpointSelector, one(cilium, 'Deployment', 'ai-gateway').spec.template.metadata.labels));
    assert.deepEqual(cnp.spec.ingress, [{ fromEntities: ['ingress'], toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }]);
    // With its own Gateway and HTTP-01, the solver pods are admitted the same way.
    const solver = one(ciliumOwn, 'CiliumNetworkPolicy', 'ai-gateway-acme-solver-from-cilium-ingress');
    assert.deepEqual(solver.spec.ingress[0].fromEntities, ['ingress']);
    assert.equal(solver.spec.ingress[0].toPorts[0].ports[0].port, '8089');
  });

  it("gke: Google's front-end ranges and the proxy-only subnet, and a HealthCheckPolicy sending the LB health check to /ready", () => {
    assert.deepEqual(
      httpPeers(gke).map((p) => p.ipBlock.cidr),
      [...GKE_FRONTEND_RANGES, '10.129.0.0/23'],
    );
    const hc = one(gke, 'HealthCheckPolicy', 'ai-gateway');
    assert.equal(hc.apiVersion, 'networking.gke.io/v1');
    assert.deepEqual(hc.spec.targetRef, { group: '', kind: 'Service', name: 'ai-gateway' });
    assert.deepEqual(hc.spec.default.config, { type: 'HTTP', httpHealthCheck: { portSpecification: 'USE_FIXED_PORT', port: 8080, requestPath: '/ready' } });
    assert.equal(ofKind(gatewayApi, 'HealthCheckPolicy').length, 0, 'only the gke preset renders it');
  });

  it('refuses a Gateway API stack that chooses no data plane, listing the choices', async () => {
    const [shared, own] = await Promise.all([
      render('production', '--set', 'route={kind: gateway-api, host: gateway.example.com, gateway: {parentRef: {name: shared-gateway, namespace: gateway-system, sectionName: https}}}'),
      render('staging', '--set', 'route={kind: transition, host: gateway.staging.example.com, gateway: {create: {className: eg}}, tls: {acme: {email: platform@example.com}}}'),
    ]);
    for (const r of [shared, own]) {
      assert.equal(r.code, 1, 'rendered without a data plane');
      assert.match(r.stderr, /ai-gateway:route\.dataPlane: is required with Gateway API: .*kind: namespace.*kind: cidrs.*kind: envoy-gateway.*kind: cilium.*kind: gke/);
      assert.equal(r.files.size, 0);
    }
    const bad = await render('production', ...GA, '--set', 'route.dataPlane={kind: istio}');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /ai-gateway:route\.dataPlane\.kind/);
  });

  it('pulumi.com/waitFor: the HTTPRoute waits for Accepted and ResolvedRefs on its parent, the Certificate for Ready', () => {
    for (const r of [transition, gatewayApi, ciliumOwn]) {
      const waitFor = JSON.parse(one(r, 'HTTPRoute', 'ai-gateway').metadata.annotations['pulumi.com/waitFor']);
      assert.deepEqual(waitFor, ['jsonpath={.status.parents[0].conditions[?(@.type=="Accepted")].status}=True', 'jsonpath={.status.parents[0].conditions[?(@.type=="ResolvedRefs")].status}=True']);
    }
    const cert = one(ciliumOwn, 'Certificate', 'gateway-staging-example-com-tls');
    assert.equal(cert.metadata.annotations['pulumi.com/waitFor'], 'condition=Ready');
    const listener = one(ciliumOwn, 'Gateway', 'ai-gateway').spec.listeners.find((l: Obj) => l.name === 'https');
    assert.equal(listener.tls.certificateRefs[0].name, cert.spec.secretName);
  });

  it("a transition with the stack's own Gateway leaves the listener's certificate to the Ingress's (one Certificate per Secret), solved through nginx", async () => {
    const r = await render('staging', '--set', 'route.kind=transition');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ofKind(r, 'Certificate').length, 0, 'a second Certificate for the same Secret would fight the ingress-shim one');
    const ing = one(r, 'Ingress', 'ai-gateway');
    const listener = one(r, 'Gateway', 'ai-gateway').spec.listeners.find((l: Obj) => l.name === 'https');
    assert.equal(ing.spec.tls[0].secretName, listener.tls.certificateRefs[0].name);
    assert.equal(ing.metadata.annotations['cert-manager.io/issuer'], 'ai-gateway-acme');
    assert.deepEqual(one(r, 'Issuer', 'ai-gateway-acme').spec.acme.solvers, [{ http01: { ingress: { ingressClassName: 'nginx' } } }]);
  });
});
