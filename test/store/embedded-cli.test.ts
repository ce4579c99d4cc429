/**
 * The embedded default (PGlite in the process, no PostgreSQL installed) runs the same
 * migrations and SQL, and `npm run admin` drives the admin API end to end against it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import OpenAI from 'openai';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { provider, startTestGateway, TestGateway } from '../helpers/gateway';
import { hashKey } from '../../service/tenancy/keys';

const ADMIN = 'sk-gw-embedded-admin';
const CLI = join(__dirname, '../../scripts/admin.ts');

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { env: { ...process.env, AIGW_URL: '', AIGW_ADMIN_KEY: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the embedded store (PGlite) and npm run admin', function () {
  this.timeout(90_000);
  let up: FakeUpstream;
  let gw: TestGateway;
  let env: Record<string, string>;

  before(async () => {
    up = await startFakeUpstream('p');
    gw = await startTestGateway({
      auth: { keys: [], admin_key_hashes: [hashKey(ADMIN)] },
      teams: [{ name: 'search' }],
      providers: [provider('p', up.url, [{ name: 'm', input_per_million: 100, output_per_million: 200 }])],
      store: { embedded: true },
    });
    env = { AIGW_URL: gw.url, AIGW_ADMIN_KEY: ADMIN };
  });
  after(async () => {
    await gw?.shutdown();
    await up?.close();
  });

  it('--help exits 0; a usage error exits 2 with one line and no stack trace', async () => {
    const help = await cli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /keys create --team T/);
    const usage = await cli(['keys', 'create'], env);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /keys create needs --team/);
    assert.doesNotMatch(usage.stderr, /\bat .*\.ts:\d+/);
    const unknown = await cli(['keys', 'create', '--team', 'search', '--budget-daily', 'lots'], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /--budget-daily must be a number/);
  });

  it('keys create -> the key works; keys list shows no secret; keys revoke -> 401; spend and audit read the store', async () => {
    const created = await cli(['keys', 'create', '--team', 'search', '--budget-daily', '50', '--json'], env);
    assert.equal(created.code, 0, created.stderr);
    const key = JSON.parse(created.stdout) as { id: string; key: string; budget: { daily_usd: number } };
    assert.equal(key.budget.daily_usd, 50);
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key.key, maxRetries: 0 });
    const answer = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(answer.usage?.prompt_tokens, 10);

    const list = await cli(['keys', 'list', '--team', 'search'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${key.id}\\s+search-[0-9a-f]+\\s+search\\s+default\\s+active\\s+api`));
    assert.ok(!list.stdout.includes(key.key));

    const spend = await cli(['spend', '--team', 'search', '--group-by', 'key', '--csv'], env);
    assert.equal(spend.code, 0, spend.stderr);
    assert.equal(spend.stdout.trim().split('\r\n')[1], `${key.id},1,0,0,10,5,0.002,0.002`);

    const revoked = await cli(['keys', 'revoke', key.id], env);
    assert.equal(revoked.code, 0, revoked.stderr);
    await assert.rejects(client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }), (err: InstanceType<typeof OpenAI.APIError>) => err.status === 401);

    const audit = await cli(['audit', '--limit', '5'], env);
    assert.match(audit.stdout, /key\.revoke/);
    assert.match(audit.stdout, /key\.create/);

    const refused = await cli(['keys', 'revoke', 'key_nope'], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /error 404: No key with id "key_nope"/);
    const wrongKey = await cli(['keys', 'list'], { ...env, AIGW_ADMIN_KEY: 'sk-gw-not-admin' });
    assert.equal(wrongKey.code, 1);
    assert.match(wrongKey.stderr, /error 403/);
  });
});
