/**
 * Egress follows the providers: each base_url is classified at render time; in-cluster Services get a
 * rule to their namespace and port, private addresses need an explicit `egress.extra` entry, and a
 * provider the policies would block fails the render naming it. Proxy and DNS rules too.
 */
import assert from 'node:assert/strict';
import { EgressConfig, egressSchema } from '../../infra/config';
import { Destination, classify, cidrContains, cidrWithin, planEgress } from '../../infra/egress';
import { Obj, RenderResult, cleanup, one, render } from './helpers';

const SELF_HOSTED =
  '{name: self-hosted, type: openai, base_url: "http://vllm.models.svc.cluster.local:8000/v1", timeout_ms: 120000, models: [{name: llama-3.1-8b, input_per_million: 0.05, output_per_million: 0.05}]}';
const PRIVATE = '{name: private-relay, base_url: "http://10.1.2.3:8000/v1", models: [{name: llama-3.1-8b, input_per_million: 0.05, output_per_million: 0.05}]}';
const egress = (e: Partial<EgressConfig> = {}) => egressSchema.parse(e) as EgressConfig;
const up = (name: string, url: string) => ({ where: `gateway.providers[0]`, name, url });
const gatewayEgress = (r: RenderResult) => one(r, 'NetworkPolicy', 'ai-gateway-gateway').spec.egress as Obj[];
const ports = (rule: Obj) => rule.ports.map((p: Obj) => `${p.protocol}/${p.port}`).sort();
const isPublic443 = (rule: Obj) => rule.to[0].ipBlock?.cidr === '0.0.0.0/0';

describe('infra: egress derived from the providers', function () {
  this.timeout(400_000);
  after(cleanup);

  it('classifies provider URLs: Services, private and public addresses and names, forbidden ranges', () => {
    const table: [string, Partial<Destination>][] = [
      ['http://vllm.models.svc.cluster.local:8000/v1', { kind: 'service', namespace: 'models', port: 8000 }],
      ['http://vllm.models.svc:8000/v1', { kind: 'service', namespace: 'models', port: 8000 }],
      ['https://api.openai.com/v1', { kind: 'host', scope: 'public', port: 443 }],
      ['https://example-east.privatelink.openai.azure.com', { kind: 'host', scope: 'private', port: 443 }],
      ['http://llm.corp.internal:9000/v1', { kind: 'host', scope: 'private', port: 9000 }],
      ['http://vllm:8000/v1', { kind: 'host', scope: 'private' }],
      ['http://10.1.2.3:8000/v1', { kind: 'address', scope: 'private', port: 8000 }],
      ['http://100.64.0.9/v1', { kind: 'address', scope: 'private', port: 80 }],
      ['https://203.0.113.7/v1', { kind: 'address', scope: 'public', port: 443 }],
      ['http://169.254.169.254/latest', { kind: 'address', scope: 'forbidden' }],
      ['http://127.0.0.1:8000/v1', { kind: 'address', scope: 'forbidden' }],
      ['http://[fd00::1]:8000/v1', { kind: 'address', scope: 'forbidden' }],
    ];
    for (const [url, expected] of table) {
      const d = classify(url, 'cluster.local');
      for (const [k, v] of Object.entries(expected)) assert.equal((d as Record<string, unknown>)[k], v, `${url}: ${k}`);
    }
    assert.equal(classify('http://vllm.models.svc.k8s.example:8000', 'k8s.example').kind, 'service', 'a custom cluster domain');
    assert.ok(cidrContains('10.1.0.0/16', '10.1.2.3') && !cidrContains('10.1.0.0/16', '10.2.0.1'));
    assert.ok(cidrWithin('10.0.0.0/8', '0.0.0.0/0') && !cidrWithin('0.0.0.0/0', '10.0.0.0/8'));
  });

  it('plans one rule per Service namespace and port, public 443 only when a provider needs it, and a named problem for each blocked provider', () => {
    const svc = planEgress([up('vllm', 'http://vllm.models.svc.cluster.local:8000/v1'), up('vllm2', 'http://other.models.svc:8000/v1')], egress());
    assert.deepEqual(svc.services, [{ namespace: 'models', port: 8000 }]);
    assert.equal(svc.public443, false, 'no public provider, no public rule');
    assert.deepEqual(svc.problems, []);

    const blocked = planEgress([up('private-relay', 'http://10.1.2.3:8000/v1')], egress());
    assert.equal(blocked.problems.length, 1);
    assert.match(
      blocked.problems[0],
      /^ai-gateway:gateway\.providers\[0\] \(provider "private-relay"\): http:\/\/10\.1\.2\.3:8000\/v1 would be blocked .* a private address; add the ai-gateway:egress\.extra entry \{cidr: 10\.1\.2\.3\/32, port: 8000\}/,
    );
    assert.deepEqual(planEgress([up('private-relay', 'http://10.1.2.3:8000/v1')], egress({ extra: [{ cidr: '10.1.0.0/16', port: 8000 }] as never })).problems, []);
    assert.equal(planEgress([up('private-relay', 'http://10.1.2.3:8000/v1')], egress({ extra: [{ cidr: '10.1.0.0/16', port: 9000 }] as never })).problems.length, 1, 'the port must match too');

    const azure = 'https://example-east.privatelink.openai.azure.com';
    assert.match(planEgress([up('azure', azure)], egress()).problems[0], /a private host name; .*hosts: \[example-east\.privatelink\.openai\.azure\.com\]/);
    const covered = planEgress([up('azure', azure)], egress({ extra: [{ cidr: '10.8.0.0/24', port: 443, hosts: ['example-east.privatelink.openai.azure.com'] }] as never }));
    assert.deepEqual([covered.problems, covered.public443], [[], false]);
    // Azure Private Link under the public name (*.openai.azure.com resolves privately inside the VNet):
    // the entry listing the host declares the private endpoint's CIDR, and no public-443 rule is opened for it.
    const publicName = planEgress(
      [up('azure-pl', 'https://example-east.openai.azure.com')],
      egress({ extra: [{ cidr: '10.8.0.4/32', port: 443, hosts: ['example-east.openai.azure.com'] }] as never }),
    );
    assert.deepEqual([publicName.problems, publicName.public443, publicName.extra.map((e) => e.cidr)], [[], false, ['10.8.0.4/32']]);

    assert.match(planEgress([up('odd', 'https://api.example.com:8443/v1')], egress()).problems[0], /a public host on a port other than 443/);
    assert.match(planEgress([up('meta', 'http://169.254.169.254/v1')], egress()).problems[0], /never allow/);
    assert.equal(planEgress([up('openai', 'https://api.openai.com/v1')], egress()).public443, true);
  });

  it('with a proxy: proxied providers need no direct rule, the proxy does, in-cluster names bypass it', () => {
    const proxy = { url: 'http://proxy.corp.internal:3128', noProxy: [] };
    const plan = planEgress([up('openai', 'https://api.openai.com/v1'), up('vllm', 'http://vllm.models.svc.cluster.local:8000/v1')], egress({ proxy } as never));
    assert.match(plan.problems.join('\n'), /ai-gateway:egress\.proxy\.url \(the HTTPS proxy\): http:\/\/proxy\.corp\.internal:3128 would be blocked/);
    const ok = planEgress(
      [up('openai', 'https://api.openai.com/v1'), up('vllm', 'http://vllm.models.svc.cluster.local:8000/v1')],
      egress({ proxy, extra: [{ cidr: '10.0.5.10/32', port: 3128, hosts: ['proxy.corp.internal'] }] } as never),
    );
    assert.deepEqual(ok.problems, []);
    assert.equal(ok.public443, false, 'public providers go through the proxy');
    assert.deepEqual(ok.services, [{ namespace: 'models', port: 8000 }], 'in-cluster providers go direct (NO_PROXY has .svc and the cluster domain)');
    assert.deepEqual(ok.proxyEnv, { HTTPS_PROXY: proxy.url, HTTP_PROXY: proxy.url, NO_PROXY: '.svc,.cluster.local' });
  });

  it('the example self-hosted provider renders an egress rule to its namespace and port', async () => {
    const r = await render('production', '--set', `gateway.providers[2]=${SELF_HOSTED}`);
    assert.equal(r.code, 0, r.stderr);
    const rule = gatewayEgress(r).find((e) => e.to[0].namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'models');
    assert.ok(rule, 'no egress rule to namespace models');
    assert.deepEqual(rule.to, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'models' } } }]);
    assert.deepEqual(ports(rule), ['TCP/8000']);
    assert.ok(gatewayEgress(r).some(isPublic443), 'the public providers keep their 443 rule');
  });

  it('a private provider fails the render naming it and the missing rule, and renders once egress.extra allows it', async () => {
    const blocked = await render('production', '--set', `gateway.providers[2]=${PRIVATE}`);
    assert.equal(blocked.code, 1);
    assert.match(blocked.stderr, /ai-gateway:gateway\.providers\[2\] \(provider "private-relay"\): .*egress\.extra entry \{cidr: 10\.1\.2\.3\/32, port: 8000\}/);
    assert.equal(blocked.files.size, 0);

    const allowed = await render('production', '--set', `gateway.providers[2]=${PRIVATE}`, '--set', 'egress.extra=[{cidr: 10.1.2.0/24, port: 8000}]');
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.ok(gatewayEgress(allowed).some((e) => e.to[0].ipBlock?.cidr === '10.1.2.0/24' && ports(e).join() === 'TCP/8000'));
  });

  it('a proxy puts HTTPS_PROXY/NO_PROXY on the pods and replaces public 443 with the rule to the proxy', async () => {
    const r = await render('production', '--set', 'egress={proxy: {url: "http://10.0.5.10:3128", noProxy: [example.internal]}, extra: [{cidr: 10.0.5.10/32, port: 3128}]}');
    assert.equal(r.code, 0, r.stderr);
    const env = Object.fromEntries(one(r, 'Deployment', 'ai-gateway').spec.template.spec.containers[0].env.map((e: Obj) => [e.name, e.value]));
    assert.equal(env.HTTPS_PROXY, 'http://10.0.5.10:3128');
    assert.equal(env.NO_PROXY, 'example.internal,.svc,.cluster.local');
    const rules = gatewayEgress(r);
    assert.ok(!rules.some(isPublic443), 'every public provider goes through the proxy: no direct public egress');
    assert.ok(rules.some((e) => e.to[0].ipBlock?.cidr === '10.0.5.10/32' && ports(e).join() === 'TCP/3128'));
  });

  it('DNS goes to the kube-dns pods by label, plus NodeLocal DNSCache when its address is set', async () => {
    const r = await render('production', '--set', 'egress.dns.nodeLocalAddress=169.254.20.10');
    assert.equal(r.code, 0, r.stderr);
    const [dns] = gatewayEgress(r);
    assert.deepEqual(ports(dns), ['TCP/53', 'UDP/53']);
    assert.deepEqual(dns.to, [
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } },
      { ipBlock: { cidr: '169.254.20.10/32' } },
    ]);
  });
});
