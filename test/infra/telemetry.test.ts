/**
 * Stack key `telemetry`: the OTEL_* variables on the gateway pods and an egress rule to the
 * collector derived from its URL (tables), and both in a rendered stack (Pulumi mocks).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { StackConfigError, parsePlainStackConfig } from '../../infra/config';
import { collectorEgress, collectorPeer, telemetryEnv } from '../../infra/telemetry';
import { Obj, ROOT, cleanup, modelFor, one, render, RenderResult } from './helpers';

const staging = () => {
  const doc = parseYaml(readFileSync(join(ROOT, 'stacks/Pulumi.staging.yaml'), 'utf8')) as { config: Record<string, unknown> };
  return Object.fromEntries(Object.entries(doc.config).map(([k, v]) => [k.replace(/^ai-gateway:/, ''), v]));
};

function problems(telemetry: unknown): string[] {
  try {
    parsePlainStackConfig({ ...staging(), telemetry });
    return [];
  } catch (err) {
    if (err instanceof StackConfigError) return err.problems;
    throw err;
  }
}

describe('infra: telemetry (collector endpoint, OTEL_* variables, egress)', () => {
  it('derives who the collector is from its URL', () => {
    const cases: Array<[string, ReturnType<typeof collectorPeer>]> = [
      ['http://otel-collector.observability.svc:4318', { kind: 'namespace', namespace: 'observability', port: 4318 }],
      ['http://otel-collector.observability.svc.cluster.local:4318/', { kind: 'namespace', namespace: 'observability', port: 4318 }],
      ['https://collector.tracing.svc', { kind: 'namespace', namespace: 'tracing', port: 443 }],
      ['http://otel-collector:4318', { kind: 'namespace', namespace: 'ai-gateway-staging', port: 4318 }],
      ['http://10.1.2.3:4318', { kind: 'ip', cidr: '10.1.2.3/32', port: 4318 }],
      ['http://collector.example.com', { kind: 'external', host: 'collector.example.com', port: 80 }],
      ['http://collector.observability:4318', { kind: 'external', host: 'collector.observability', port: 4318 }],
    ];
    for (const [url, peer] of cases) assert.deepEqual(collectorPeer(url, 'ai-gateway-staging'), peer, url);
  });

  it('the egress rule opens the collector port only, to its namespace, address or CIDRs', () => {
    const t = (otlpEndpoint: string, egressCidrs?: string[]) => ({ otlpEndpoint, sampleRatio: 1, ...(egressCidrs ? { egressCidrs } : {}) });
    assert.deepEqual(collectorEgress(t('http://otel-collector.observability.svc:4318'), 'gw'), {
      to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'observability' } } }],
      ports: [{ protocol: 'TCP', port: 4318 }],
    });
    assert.deepEqual(collectorEgress(t('http://10.1.2.3:4318'), 'gw'), { to: [{ ipBlock: { cidr: '10.1.2.3/32' } }], ports: [{ protocol: 'TCP', port: 4318 }] });
    assert.deepEqual(collectorEgress(t('https://otlp.example.com:4318', ['203.0.113.0/24']), 'gw'), { to: [{ ipBlock: { cidr: '203.0.113.0/24' } }], ports: [{ protocol: 'TCP', port: 4318 }] });
    assert.throws(() => collectorEgress(t('https://otlp.example.com'), 'gw'), /egressCidrs/);
  });

  it('sets the standard variables, and a parent-based ratio sampler below 1', () => {
    assert.deepEqual(telemetryEnv(undefined, 'staging', 'ns'), []);
    const env = telemetryEnv({ otlpEndpoint: 'http://c.o.svc:4318', sampleRatio: 0.25 }, 'production', 'ai-gateway');
    assert.deepEqual(Object.fromEntries(env.map((e) => [e.name, e.value ?? 'fieldRef'])), {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c.o.svc:4318',
      OTEL_SERVICE_NAME: 'ai-gateway',
      K8S_POD_NAME: 'fieldRef',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=production,k8s.namespace.name=ai-gateway,k8s.pod.name=$(K8S_POD_NAME)',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
    });
    assert.ok(!telemetryEnv({ otlpEndpoint: 'http://c.o.svc:4318', sampleRatio: 1 }, 's', 'n').some((e) => String(e.name).startsWith('OTEL_TRACES_SAMPLER')));
  });

  it('the stack schema refuses a bad endpoint, credentials in it, and an outside host without CIDRs', () => {
    assert.deepEqual(problems({ otlpEndpoint: 'http://otel-collector.observability.svc:4318' }), []);
    assert.deepEqual(problems({ otlpEndpoint: 'grpc://collector:4317' }), ['ai-gateway:telemetry.otlpEndpoint: must be an http:// or https:// URL like http://otel-collector.observability.svc:4318']);
    assert.deepEqual(problems({ otlpEndpoint: 'https://user:token@otlp.example.com', egressCidrs: ['203.0.113.0/24'] }), ['ai-gateway:telemetry.otlpEndpoint: must not carry credentials']);
    assert.match(problems({ otlpEndpoint: 'https://otlp.example.com' }).join('\n'), /^ai-gateway:telemetry\.egressCidrs: is required when otlpEndpoint is not an in-cluster Service/);
    assert.match(problems({ otlpEndpoint: 'http://c.o.svc:4318', sampleRatio: 2 }).join('\n'), /ai-gateway:telemetry\.sampleRatio/);
    assert.match(problems({ otlpEndpoint: 'http://c.o.svc:4318', endpoint: 'x' }).join('\n'), /unknown key\(s\) "endpoint"/);
    // The gateway's own config key would bypass the egress rule: the stack points at the stack key.
    const viaGateway = () => parsePlainStackConfig({ ...staging(), gateway: { ...(staging().gateway as object), telemetry: { otlp_endpoint: 'http://c.o.svc:4318' } } });
    assert.throws(viaGateway, /ai-gateway:gateway\.telemetry: set the collector with the stack key telemetry\.otlpEndpoint/);
  });

  describe('rendered (Pulumi mocks)', function () {
    this.timeout(400_000);
    let plain: RenderResult;
    let traced: RenderResult;
    before(async () => {
      [plain, traced] = await Promise.all([render('staging'), render('staging', '--set', 'telemetry={otlpEndpoint: "http://otel-collector.observability.svc:4318", sampleRatio: 0.5}')]);
      assert.equal(plain.code, 0, plain.stderr);
      assert.equal(traced.code, 0, traced.stderr);
    });
    after(cleanup);

    const container = (r: RenderResult) => one(r, 'Deployment', 'ai-gateway').spec.template.spec.containers[0] as Obj;
    const egress = (r: RenderResult) => one(r, 'NetworkPolicy', 'ai-gateway-gateway').spec.egress as Obj[];

    it('the Deployment carries the OTEL_* variables, and only when telemetry is set', async () => {
      const env = container(traced).env as Obj[];
      const byName = Object.fromEntries(env.map((e) => [e.name, e]));
      assert.equal(byName.OTEL_EXPORTER_OTLP_ENDPOINT.value, 'http://otel-collector.observability.svc:4318');
      assert.equal(byName.OTEL_TRACES_SAMPLER_ARG.value, '0.5');
      assert.deepEqual(byName.K8S_POD_NAME.valueFrom, { fieldRef: { fieldPath: 'metadata.name' } });
      assert.ok(env.findIndex((e) => e.name === 'K8S_POD_NAME') < env.findIndex((e) => e.name === 'OTEL_RESOURCE_ATTRIBUTES'), 'defined before it is referenced');
      assert.ok(!(container(plain).env as Obj[]).some((e) => e.name.startsWith('OTEL_')));
      const deployment = one(traced, 'Deployment', 'ai-gateway');
      const Model = await modelFor(deployment);
      assert.doesNotThrow(() => new Model(deployment).validate());
    });

    it('the gateway NetworkPolicy gains exactly one egress rule: the collector namespace on 4318', async () => {
      const added = egress(traced).filter((rule) => !egress(plain).some((p) => JSON.stringify(p) === JSON.stringify(rule)));
      assert.deepEqual(added, [{ to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'observability' } } }], ports: [{ protocol: 'TCP', port: 4318 }] }]);
      assert.equal(egress(traced).length, egress(plain).length + 1);
      const policy = one(traced, 'NetworkPolicy', 'ai-gateway-gateway');
      const Model = await modelFor(policy);
      assert.doesNotThrow(() => new Model(policy).validate());
    });
  });
});
