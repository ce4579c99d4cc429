/**
 * Temporary folders the suites make, removed when the test process exits, however it exits: after
 * the whole run (a folder a spawned gateway or Redis still uses stays until then), after a failure,
 * and after `npm test -- --dry-run` (test/tooling/npm-test.test.ts), which loads every suite and so
 * runs the describe bodies that make folders, but none of the hooks that would remove them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made = new Set<string>();

process.on('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A new folder under the system's temporary directory, named `prefix` and six random characters. */
export function testTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.add(dir);
  return dir;
}
