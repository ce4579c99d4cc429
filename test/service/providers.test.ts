/** The provider adapters as the client and executor read them: targets, status classes, error bodies, config rules. Pure. */
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../service/config/schema';
import { anthropicUsage, finishReason } from '../../service/providers/anthropic-response';
import { adapterFor } from '../../service/providers/registry';
import { CredentialsError } from '../../service/providers/types';
import { buildCatalog } from '../../service/routing/catalog';
import { targetFor } from '../../service/upstream/client';

const providers = [
  { name: 'ant', type: 'anthropic' as const, base_url: 'https://api.anthropic.com', api_key: 'sk-ant-x', models: [{ name: 'claude', upstream_name: 'claude-sonnet-4-5', unpriced: true }] },
  { name: 'proxy', type: 'anthropic' as const, base_url: 'https://relay.internal/anthropic/', anthropic_version: '2023-01-01', models: [{ name: 'claude', unpriced: true }] },
];

describe('provider adapters', () => {
  it('anthropic: {base_url}/v1/messages with x-api-key and anthropic-version, no bearer token', () => {
    const config = parseConfig({ auth: { mode: 'none' }, providers });
    const t = targetFor(config.providers[0], 'chat', 'claude-sonnet-4-5');
    assert.equal(`${t.origin}${t.path}`, 'https://api.anthropic.com/v1/messages');
    assert.equal(t.headers['x-api-key'], 'sk-ant-x');
    assert.equal(t.headers['anthropic-version'], '2023-06-01');
    assert.equal(t.headers.authorization, undefined);
    const p = targetFor(config.providers[1], 'chat', 'claude');
    assert.equal(p.path, '/anthropic/v1/messages');
    assert.equal(p.headers['anthropic-version'], '2023-01-01');
    assert.equal(p.headers['x-api-key'], undefined);
  });

  it('status classes: 529 is retryable for anthropic only; 429/5xx retryable, 401/403 auth, 404, other 4xx the client', () => {
    const ant = adapterFor('anthropic');
    const oa = adapterFor('openai');
    assert.equal(ant.classifyStatus(529), 'retryable');
    assert.equal(oa.classifyStatus(529), 'other');
    for (const a of [ant, oa]) {
      assert.equal(a.classifyStatus(429), 'retryable');
      assert.equal(a.classifyStatus(503), 'retryable');
      assert.equal(a.classifyStatus(401), 'auth');
      assert.equal(a.classifyStatus(404), 'not_found');
      assert.equal(a.classifyStatus(422), 'client');
    }
  });

  it('error bodies: Anthropic {"type":"error","error":{type,message}} into OpenAI fields, the Anthropic type as code', () => {
    assert.deepEqual(adapterFor('anthropic').errorBody('{"type":"error","error":{"type":"request_too_large","message":"too big"}}'), {
      message: 'too big',
      type: 'invalid_request_error',
      code: 'request_too_large',
      param: null,
    });
    assert.equal(adapterFor('anthropic').errorBody('<html>'), undefined);
    assert.deepEqual(adapterFor('openai').errorBody('{"error":{"message":"m","type":"t","code":"c","param":"p"}}'), { message: 'm', type: 't', code: 'c', param: 'p' });
  });

  it('anthropic usage: cache reads and writes count in prompt_tokens, reads as cached_tokens; stop reasons', () => {
    assert.deepEqual(anthropicUsage({ input_tokens: 5, output_tokens: 9, cache_read_input_tokens: 100, cache_creation_input_tokens: 20 }), {
      prompt_tokens: 125,
      completion_tokens: 9,
      cached_tokens: 100,
    });
    assert.equal(anthropicUsage({}), undefined);
    assert.deepEqual(['end_turn', 'max_tokens', 'tool_use', 'stop_sequence'].map(finishReason), ['stop', 'length', 'tool_calls', 'stop']);
  });

  it('anthropic serves chat by default and refuses other endpoints in config', () => {
    const catalog = buildCatalog(parseConfig({ auth: { mode: 'none' }, providers }));
    assert.deepEqual(
      catalog.resolveFor('claude', 'chat')?.candidates.map((c) => c.provider.name),
      ['ant', 'proxy'],
    );
    assert.equal(catalog.resolveFor('claude', 'responses')?.unserved, 'endpoint');
    assert.throws(
      () => parseConfig({ auth: { mode: 'none' }, providers: [{ ...providers[0], endpoints: ['chat', 'embedding'] }] }),
      (e: ConfigError) => /type anthropic does not serve the embedding endpoint/.test(e.message),
    );
  });
});

describe('bedrock adapter', () => {
  it('needs a region; calls /model/{id}/converse or /converse-stream; signs with the environment credentials, refuses without them', async () => {
    const p = { name: 'br', type: 'bedrock' as const, base_url: 'https://bedrock-runtime.eu-west-1.amazonaws.com', models: [{ name: 'm', upstream_name: 'anthropic.claude-v2:1', unpriced: true }] };
    assert.throws(
      () => parseConfig({ auth: { mode: 'none' }, providers: [p] }),
      (e: ConfigError) => /region: required for type bedrock/.test(e.message),
    );
    const config = parseConfig({ auth: { mode: 'none' }, providers: [{ ...p, region: 'eu-west-1' }] });
    const provider = config.providers[0];
    assert.equal(targetFor(provider, 'chat', 'anthropic.claude-v2:1', false).path, '/model/anthropic.claude-v2%3A1/converse');
    const t = targetFor(provider, 'chat', 'anthropic.claude-v2:1', true);
    assert.equal(t.path, '/model/anthropic.claude-v2%3A1/converse-stream');
    const adapter = adapterFor('bedrock');
    const signed = await adapter.sign!(provider, t, Buffer.from('{}'), { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'tok' });
    assert.match(signed.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/bedrock\/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$/);
    assert.equal(signed['x-amz-security-token'], 'tok');
    assert.match(signed['x-amz-date'], /^\d{8}T\d{6}Z$/);
    await assert.rejects(adapter.sign!(provider, t, Buffer.from('{}'), {}), (e: Error) => e instanceof CredentialsError && /no AWS credentials/.test(e.message));
  });
});
