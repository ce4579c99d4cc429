/**
 * `npm test` runs every suite; `npm test -- FILE` runs only that file (mocha's --dry-run lists
 * the tests it would run without running them).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const ROOT = join(__dirname, '../..');

async function filesNpmTestWouldRun(args: string[]): Promise<Set<string>> {
  const { stdout } = await promisify(execFile)('npm', ['test', '--silent', '--', '--dry-run', '--reporter', 'json', ...args], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
  const report = JSON.parse(stdout.slice(stdout.indexOf('{'))) as { tests: Array<{ file: string }> };
  return new Set(report.tests.map((t) => t.file.slice(ROOT.length + 1)));
}

describe('npm test', () => {
  it('npm test -- FILE runs only that file', async () => {
    assert.deepEqual([...(await filesNpmTestWouldRun(['test/service/config.test.ts']))], ['test/service/config.test.ts']);
  });

  it('npm test without files runs every suite', async () => {
    const files = await filesNpmTestWouldRun([]);
    for (const dir of ['service', 'tenancy', 'e2e', 'faults', 'infra', 'tooling']) {
      assert.ok(
        [...files].some((f) => f.startsWith(`test/${dir}/`)),
        `no suite from test/${dir}/ in ${[...files].join(', ')}`,
      );
    }
  });
});
