/** When tracing is on, with which exporter; and the GenAI names the spans use (tables). */
import assert from 'node:assert/strict';
import { parseConfig } from '../../service/config/schema';
import { genAiProviderName, genAiSpanName, OPERATION, serverOf, serverSpanName } from '../../service/telemetry/semconv';
import { tracingSettings } from '../../service/telemetry/settings';

describe('tracing settings (standard OTEL_* variables, gateway config)', () => {
  const cases: Array<[string, Record<string, string>, { otlp_endpoint?: string }, ReturnType<typeof tracingSettings>]> = [
    ['nothing set: off', {}, {}, { enabled: false }],
    ['OTEL_EXPORTER_OTLP_ENDPOINT: on, http/protobuf by default', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }, {}, { enabled: true, exporter: 'otlp', protocol: 'http/protobuf' }],
    ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT alone: on', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' }, {}, { enabled: true, exporter: 'otlp', protocol: 'http/protobuf' }],
    ['blank endpoint: off', { OTEL_EXPORTER_OTLP_ENDPOINT: ' ' }, {}, { enabled: false }],
    ['http/json protocol', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' }, {}, { enabled: true, exporter: 'otlp', protocol: 'http/json' }],
    [
      'the traces protocol wins over the general one',
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' },
      {},
      { enabled: true, exporter: 'otlp', protocol: 'http/protobuf' },
    ],
    [
      'grpc: off, with the reason',
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
      {},
      { enabled: false, problem: 'OTLP protocol "grpc" is not supported (use http/protobuf or http/json): tracing is off' },
    ],
    ['OTEL_SDK_DISABLED=true wins', { OTEL_SDK_DISABLED: 'TRUE', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' }, { otlp_endpoint: 'http://d' }, { enabled: false }],
    ['OTEL_TRACES_EXPORTER=none wins', { OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' }, {}, { enabled: false }],
    ['OTEL_TRACES_EXPORTER=console', { OTEL_TRACES_EXPORTER: 'console' }, {}, { enabled: true, exporter: 'console', protocol: 'http/protobuf' }],
    ['OTEL_TRACES_EXPORTER=otlp with the SDK default endpoint', { OTEL_TRACES_EXPORTER: 'otlp' }, {}, { enabled: true, exporter: 'otlp', protocol: 'http/protobuf' }],
    [
      'OTEL_TRACES_EXPORTER=zipkin: off, with the reason',
      { OTEL_TRACES_EXPORTER: 'zipkin' },
      {},
      { enabled: false, problem: 'OTEL_TRACES_EXPORTER "zipkin" is not supported (use otlp, console or none): tracing is off' },
    ],
    [
      'gateway config endpoint: on, traces path appended',
      {},
      { otlp_endpoint: 'http://otel-collector.observability.svc:4318/' },
      { enabled: true, exporter: 'otlp', protocol: 'http/protobuf', url: 'http://otel-collector.observability.svc:4318/v1/traces' },
    ],
    ['an OTEL endpoint wins over the gateway config', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' }, { otlp_endpoint: 'http://d' }, { enabled: true, exporter: 'otlp', protocol: 'http/protobuf' }],
  ];
  for (const [name, env, config, expected] of cases) {
    it(name, () => assert.deepEqual(tracingSettings(env, config), expected));
  }

  it('the gateway config accepts an http(s) telemetry.otlp_endpoint and refuses anything else', () => {
    const base = { auth: { mode: 'none' as const }, providers: [{ name: 'p', base_url: 'http://127.0.0.1:1/v1', models: [{ name: 'm', unpriced: true }] }] };
    assert.equal(parseConfig({ ...base, telemetry: { otlp_endpoint: 'https://collector.example.com:4318' } }).telemetry.otlp_endpoint, 'https://collector.example.com:4318');
    assert.deepEqual(parseConfig(base).telemetry, {});
    assert.throws(() => parseConfig({ ...base, telemetry: { otlp_endpoint: 'grpc://collector:4317' } }), /telemetry\.otlp_endpoint/);
  });
});

describe('GenAI semantic-convention names', () => {
  it('operation per endpoint, provider name per provider type, span names', () => {
    assert.deepEqual(OPERATION, { chat: 'chat', completion: 'text_completion', embedding: 'embeddings', responses: 'chat' });
    assert.deepEqual(['openai', 'azure', 'anthropic', 'bedrock', 'other'].map(genAiProviderName), ['openai', 'azure.ai.openai', 'anthropic', 'aws.bedrock', 'other']);
    assert.equal(genAiSpanName('completion', 'gpt-3.5-turbo-instruct'), 'text_completion gpt-3.5-turbo-instruct');
    assert.equal(serverSpanName('POST', '/v1/embeddings'), 'POST /v1/embeddings');
    assert.equal(serverSpanName('GET', undefined), 'GET');
  });

  it('server.address and port come from the base URL, never its credentials or path', () => {
    assert.deepEqual(serverOf('https://user:pw@res.openai.azure.com/openai?x=1'), { address: 'res.openai.azure.com', port: 443 });
    assert.deepEqual(serverOf('http://127.0.0.1:8080/v1'), { address: '127.0.0.1', port: 8080 });
    assert.deepEqual(serverOf('http://api.internal/v1'), { address: 'api.internal', port: 80 });
  });
});
