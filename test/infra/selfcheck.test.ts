/**
 * Issue 23, point 6: the program validates its rendered objects (schemas and cross-object checks)
 * before it registers any resource, as `pulumi up` runs it, not only under `npm run render`.
 * `render --as-program` loads the program without the renderer's mark, so it runs its own check.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SECRET_KEYS, plainConfigDocument } from '../../infra/selfCheck';
import { cleanup, render } from './helpers';
import { testTempDir } from '../helpers/temp-dirs';

describe('infra: the program runs the render validation before registering resources', function () {
  this.timeout(400_000);
  const dir = testTempDir('aigw-selfcheck-test-');
  after(() => {
    cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an object that fails a check stops the program before the first resource (not even the provider is registered)', async () => {
    const manifest = join(dir, 'bad.json');
    const r = await render('staging', '--as-program', '--manifest', manifest, '--set', 'monitoring.ruleLabels={release: kube prometheus}');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the rendered objects fail validation, nothing was created/);
    assert.match(r.stderr, /ServiceMonitor\/ai-gateway metadata\.labels: label "release": value "kube prometheus"/);
    assert.deepEqual(JSON.parse(readFileSync(manifest, 'utf8')), []);
    assert.equal(r.files.size, 0);
  });

  it('a valid stack passes the check and registers its resources as before', async () => {
    const manifest = join(dir, 'good.json');
    const r = await render('staging', '--as-program', '--manifest', manifest);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(JSON.parse(readFileSync(manifest, 'utf8')).some((e: { type: string }) => e.type === 'kubernetes:apps/v1:Deployment'));
  });

  it('hands the check no secret and no kubeconfig path: only plain keys and the context', () => {
    const all: Record<string, string> = {
      'ai-gateway:namespace': 'ns',
      'ai-gateway:replicas': '2',
      'ai-gateway:cluster': JSON.stringify({ context: 'prod', kubeconfig: '/home/op/.kube/prod' }),
      'ai-gateway:route': JSON.stringify({ host: 'a.example.com' }),
      'kubernetes:context': 'other',
      ...Object.fromEntries(SECRET_KEYS.map((k) => [`ai-gateway:${k}`, `SECRET-${k}`])),
    };
    const doc = plainConfigDocument(all, 'ai-gateway');
    assert.deepEqual(doc, { config: { 'ai-gateway:namespace': 'ns', 'ai-gateway:replicas': 2, 'ai-gateway:cluster': { context: 'prod' }, 'ai-gateway:route': { host: 'a.example.com' } } });
    assert.ok(!JSON.stringify(doc).includes('SECRET-'));
  });
});
