/**
 * Bedrock credentials through the standard AWS chain (service/providers/bedrock-credentials.ts):
 * with no keys in the environment, the gateway gets them the way EKS Pod Identity hands them out
 * (AWS_CONTAINER_CREDENTIALS_FULL_URI and a token file, served here by a fake agent on 127.0.0.1),
 * signs with them, and the fake Bedrock accepts the signature. Static keys in the environment win.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import OpenAI from 'openai';
import { awsCredentials, resetAwsCredentialChain } from '../../service/providers/bedrock-credentials';
import { CredentialsError } from '../../service/providers/types';
import { FAKE_AWS, FakeBedrock, startFakeBedrock } from '../helpers/fake-bedrock';
import { keyless, metricValue, provider, startTestGateway, TestGateway } from '../helpers/gateway';
import { testTempDir } from '../helpers/temp-dirs';

const MODEL_ID = 'anthropic.claude-3-5-sonnet-20240620-v1:0';
const AGENT_TOKEN = 'pod-identity-token-for-tests';
const ENV_KEYS = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
  'AWS_EC2_METADATA_DISABLED',
  'AWS_PROFILE',
  'AWS_CONFIG_FILE',
  'AWS_SHARED_CREDENTIALS_FILE',
];

/** A stand-in for the EKS Pod Identity agent: the credentials JSON for a request carrying the token. */
function startFakeAgent(): Promise<{ url: string; calls: () => number; server: Server }> {
  let calls = 0;
  const server = createServer((req, res) => {
    calls++;
    if (req.headers.authorization !== AGENT_TOKEN) {
      res.writeHead(403).end('{"message":"bad token"}');
      return;
    }
    const expiration = new Date(Date.now() + 3600_000).toISOString();
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ AccessKeyId: FAKE_AWS.accessKeyId, SecretAccessKey: FAKE_AWS.secretAccessKey, Token: 'session-token-from-agent', Expiration: expiration }));
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/credentials`, calls: () => calls, server })));
}

describe('bedrock: AWS credentials through the standard chain', () => {
  const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  const dir = testTempDir('aigw-aws-');
  let agent: Awaited<ReturnType<typeof startFakeAgent>>;
  let br: FakeBedrock;
  let gw: TestGateway;

  before(async () => {
    for (const k of ENV_KEYS) delete process.env[k];
    // No shared config files of this machine, and no instance metadata: only what the test sets up.
    process.env.AWS_CONFIG_FILE = join(dir, 'none');
    process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, 'none');
    process.env.AWS_EC2_METADATA_DISABLED = 'true';
    agent = await startFakeAgent();
    br = await startFakeBedrock();
    gw = await startTestGateway({
      auth: { mode: 'none' },
      routing: { strategy: 'priority', max_retries: 0, circuit_breaker: { consecutive_failures: 50 } },
      providers: [{ ...keyless(provider('br', br.url, [{ name: 'claude', upstream_name: MODEL_ID, input_per_million: 3, output_per_million: 15 }])), type: 'bedrock', region: FAKE_AWS.region }],
    });
  });
  after(async () => {
    await gw.shutdown();
    await br.close();
    agent.server.close();
    rmSync(dir, { recursive: true, force: true });
    for (const k of ENV_KEYS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    resetAwsCredentialChain();
  });
  beforeEach(() => resetAwsCredentialChain());

  it('static keys in the environment win, without asking the chain', async () => {
    let asked = 0;
    const creds = await awsCredentials({ AWS_ACCESS_KEY_ID: 'AKIASTATIC', AWS_SECRET_ACCESS_KEY: 'static-secret' }, async () => {
      asked++;
      return async () => ({ accessKeyId: 'x', secretAccessKey: 'y' });
    });
    assert.deepEqual(creds, { accessKeyId: 'AKIASTATIC', secretAccessKey: 'static-secret', sessionToken: undefined });
    assert.equal(asked, 0);
  });

  it('EKS Pod Identity style (container credentials URI + token file): the call is signed with the agent credentials and Bedrock accepts it', async () => {
    const tokenFile = join(dir, 'eks-pod-identity-token');
    writeFileSync(tokenFile, AGENT_TOKEN);
    process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI = agent.url;
    process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE = tokenFile;
    try {
      const res = await new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 }).chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
      assert.equal(res.response.headers.get('x-gateway-provider'), 'br');
      assert.ok(res.data.choices[0].message.content);
      const last = br.received[br.received.length - 1];
      assert.match(String(last.headers['x-amz-security-token']), /session-token-from-agent/);
      // Memoized by the SDK: a second call does not ask the agent again.
      const calls = agent.calls();
      await new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 }).chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(agent.calls(), calls);
    } finally {
      delete process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI;
      delete process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE;
    }
  });
  // Last: the auth failure it causes marks the provider unhealthy for the gateway's breaker.
  it('without keys and without any source: a CredentialsError that names no credential, and nothing is sent', async () => {
    await assert.rejects(awsCredentials({}), (e: Error) => e instanceof CredentialsError && /standard chain/.test(e.message));
    const sent = br.received.length;
    await assert.rejects(new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'x', maxRetries: 0 }).chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] }));
    assert.equal(br.received.length, sent);
    assert.equal(await metricValue(gw.metricsUrl, 'aigw_upstream_attempts_total', { provider: 'br', outcome: 'provider_auth' }), 1);
  });
});
