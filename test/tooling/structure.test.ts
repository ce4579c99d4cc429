/**
 * The service's module structure (GUIDE.md, section 1): no import cycles, and imports point
 * down, so nothing in the lower layers imports from http/ and nothing in core/ imports from
 * outside core/. Checked on the real source with madge, the same graph
 * `npx madge --circular --extensions ts service` prints.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import madge from 'madge';

const SERVICE = join(__dirname, '../../service');
const LOWER_LAYERS = ['core', 'config', 'providers', 'routing', 'upstream', 'tenancy', 'cost', 'cache', 'messages', 'metrics', 'telemetry', 'redis'];

type Graph = Record<string, string[]>;

/** Every import edge (from, to) where `from` is in one of the dirs and `to` satisfies the predicate. */
function edges(graph: Graph, fromDirs: string[], bad: (to: string) => boolean): string[] {
  return Object.entries(graph).flatMap(([from, tos]) =>
    fromDirs.includes(from.split('/')[0]) ? tos.filter(bad).map((to) => `${from} -> ${to}`) : [],
  );
}

describe('service module structure', function () {
  this.timeout(30_000);
  let graph: Graph;
  let cycles: string[][];

  before(async () => {
    const result = await madge(SERVICE, { fileExtensions: ['ts'] });
    graph = result.obj();
    cycles = result.circular();
  });

  it('the graph holds the service modules (the check sees the real imports)', () => {
    assert.ok(Object.keys(graph).length > 40, `only ${Object.keys(graph).length} modules found`);
    assert.ok(graph['upstream/executor.ts']?.includes('core/errors.ts'), 'executor -> core/errors edge missing');
  });

  it('has no import cycle', () => {
    assert.deepEqual(cycles.map((c) => c.join(' > ')), []);
  });

  it('nothing below http/ imports from http/ (or from the app that composes it)', () => {
    const up = (to: string) => to.startsWith('http/') || to === 'app.ts' || to === 'server.ts' || to === 'main.ts';
    assert.deepEqual(edges(graph, LOWER_LAYERS, up), []);
  });

  it('core/ imports only core/', () => {
    assert.deepEqual(edges(graph, ['core'], (to) => !to.startsWith('core/')), []);
  });

  it('the check fails on a cycle or an upward import (it is not vacuous)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'structure-'));
    try {
      writeFileSync(join(dir, 'a.ts'), "import { b } from './b';\nexport const a = () => b;\n");
      writeFileSync(join(dir, 'b.ts'), "import type { a } from './a';\nexport const b = 1 as unknown as typeof a;\n");
      const found = (await madge(dir, { fileExtensions: ['ts'] })).circular();
      assert.deepEqual(found, [['a.ts', 'b.ts']], 'a type-only import closing a loop counts as a cycle');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const bad: Graph = { 'upstream/a.ts': ['http/errors.ts'], 'core/x.ts': ['routing/y.ts'] };
    assert.deepEqual(edges(bad, LOWER_LAYERS, (to) => to.startsWith('http/')), ['upstream/a.ts -> http/errors.ts']);
    assert.deepEqual(edges(bad, ['core'], (to) => !to.startsWith('core/')), ['core/x.ts -> routing/y.ts']);
  });
});
