/**
 * `npm run smoke` against a real gateway (in this process, on 127.0.0.1, with a fake
 * upstream): passes when everything answers, and exits non-zero with a reason when the
 * gateway cannot be reached or the key is wrong. The script runs as its own process, as an
 * operator would run it. No timing assertions.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { hashKey } from '../../service/tenancy/keys';
import { FakeUpstream, refusedUrl, startFakeUpstream } from '../helpers/fake-upstream';
import { provider, startTestGateway, TestGateway } from '../helpers/gateway';

const KEY = 'sk-gw-smoke-client';
const SCRIPT = join(__dirname, '../../scripts/smoke.ts');

/** Runs the smoke script without blocking this process's event loop (the gateway lives here). */
function runSmoke(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', 'tsx/cjs', SCRIPT, ...args], { cwd: join(__dirname, '../..'), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('smoke script (npm run smoke)', function () {
  this.timeout(20_000);
  let up: FakeUpstream;
  let gw: TestGateway;

  before(async () => {
    up = await startFakeUpstream('p');
    gw = await startTestGateway({
      auth: { keys: [{ hash: hashKey(KEY), name: 'smoke', team: 'ops' }] },
      providers: [provider('p', up.url, ['gpt-smoke'])],
    });
  });
  after(async () => {
    await gw.shutdown();
    await up.close();
  });

  it('passes against a working gateway given its public URL (ending in /v1, as the route exposes it): models, chat and stream', async () => {
    const { code, out } = await runSmoke(['--url', `${gw.url}/v1`, '--key', KEY]);
    assert.equal(code, 0, out);
    for (const check of ['models', 'chat', 'stream']) assert.match(out, new RegExp(`^ok +${check} `, 'm'), out);
    assert.doesNotMatch(out, /health/, 'the public route serves /v1 only: no /health check unless asked');
    assert.match(out, /using gpt-smoke/);
    assert.match(out, /latency [\d.]+ ms, provider p/);
    assert.match(out, /first byte [\d.]+ ms, [1-9]\d* chunk\(s\)/);
    assert.ok(
      up.received.some((r) => r.body.stream === true),
      'the stream reached the upstream',
    );
  });

  it('fails with a clear reason when the gateway cannot be reached', async () => {
    const { code, out } = await runSmoke(['--url', (await refusedUrl()).replace(/\/v1$/, ''), '--key', KEY, '--timeout-ms', '3000', '--health']);
    assert.notEqual(code, 0, out);
    assert.match(out, /FAIL health +GET \/health: ECONNREFUSED/, out);
    assert.match(out, /smoke test FAILED/);
  });

  it('fails when the key is refused, naming the status', async () => {
    const { code, out } = await runSmoke(['--url', gw.url, '--key', 'sk-wrong', '--model', 'gpt-smoke']);
    assert.notEqual(code, 0, out);
    assert.doesNotMatch(out, /health/);
    assert.match(out, /FAIL models +GET \/v1\/models: HTTP 401/, out);
  });

  it('--health adds GET /health for a gateway reached directly', async () => {
    const { code, out } = await runSmoke(['--url', gw.url, '--key', KEY, '--health']);
    assert.equal(code, 0, out);
    assert.match(out, /^ok +health +status ok/m, out);
  });

  it('fails the run when the chat completion is slower than --max-latency-ms (default 500)', async () => {
    up.setBehavior((req) => (req.body.stream ? { kind: 'stream' } : { kind: 'ok', delayMs: 700 }));
    try {
      const slow = await runSmoke(['--url', gw.url, '--key', KEY, '--model', 'gpt-smoke']);
      assert.notEqual(slow.code, 0, slow.out);
      assert.match(slow.out, /FAIL chat +chat completion: latency [\d.]+ ms is over --max-latency-ms 500/, slow.out);
      const lenient = await runSmoke(['--url', gw.url, '--key', KEY, '--model', 'gpt-smoke', '--max-latency-ms', '5000']);
      assert.match(lenient.out, /^ok +chat /m, lenient.out);
    } finally {
      up.setBehavior((req) => (req.body.stream ? { kind: 'stream' } : { kind: 'ok' }));
    }
  });

  it('--max-first-byte-ms fails the run on a late first streamed byte (the scheduled probe judges the gateway path by it), and passes under a lenient bound', async () => {
    up.setBehavior((req) => (req.body.stream ? { kind: 'stream', firstByteDelayMs: 700 } : { kind: 'ok' }));
    try {
      const late = await runSmoke(['--url', gw.url, '--key', KEY, '--model', 'gpt-smoke', '--max-latency-ms', '5000', '--max-first-byte-ms', '300']);
      assert.notEqual(late.code, 0, late.out);
      assert.match(late.out, /FAIL stream +stream: first byte after [\d.]+ ms, over --max-first-byte-ms 300/, late.out);
      const lenient = await runSmoke(['--url', gw.url, '--key', KEY, '--model', 'gpt-smoke', '--max-latency-ms', '5000', '--max-first-byte-ms', '5000']);
      assert.equal(lenient.code, 0, lenient.out);
    } finally {
      up.setBehavior((req) => (req.body.stream ? { kind: 'stream' } : { kind: 'ok' }));
    }
  });
});
