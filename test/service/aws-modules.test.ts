/**
 * The AWS signing and event-stream modules load only for a gateway with a Bedrock provider, and for
 * one, at start-up rather than on its first request (service/providers/aws-modules.ts). Each case
 * runs in a fresh process: this one has loaded them for the Bedrock tests.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const AWS = ['@smithy/signature-v4', '@aws-crypto/sha256-js', '@smithy/eventstream-codec'];

/** The AWS modules loaded after building an UpstreamClient for providers of these types. */
function loadedFor(types: string[]): string[] {
  const providers = types.map((type, i) => ({ name: `p${i}`, type, base_url: 'http://127.0.0.1:9/v1', region: 'us-east-1', max_connections: 4, timeout_ms: 1000 }));
  const script = `
    const { UpstreamClient } = require('./service/upstream/client');
    new UpstreamClient(${JSON.stringify(providers)}, {});
    const loaded = Object.keys(require.cache);
    process.stdout.write(JSON.stringify(${JSON.stringify(AWS)}.filter((m) => loaded.some((k) => k.includes('/node_modules/' + m + '/')))));`;
  const out = spawnSync(process.execPath, ['-r', 'tsx/cjs', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  assert.equal(out.status, 0, out.stderr);
  return JSON.parse(out.stdout) as string[];
}

describe('AWS modules: loaded for Bedrock only, at start-up', () => {
  it('a gateway with OpenAI-compatible, Azure and Anthropic providers never loads them', () => {
    assert.deepEqual(loadedFor(['openai', 'azure', 'anthropic']), []);
  });

  it('a gateway with a Bedrock provider loads all of them when it is built, before any request', () => {
    assert.deepEqual(loadedFor(['openai', 'bedrock']), AWS);
  });
});
