/**
 * The service's module structure (docs/internals.md, layout): no import cycles, and every import
 * between folders points down the declared layer order (LAYERS): never up, never sideways to
 * another folder of the same layer. Checked on the real source with madge, the same graph
 * `npx madge --circular --extensions ts service` prints. README's Development section lists the
 * same order.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import madge from 'madge';

const SERVICE = join(__dirname, '../../service');

/**
 * The layer order, lowest first. A module may import its own folder and any folder of a lower
 * layer; '.' is the service root (app.ts composes, server.ts and main.ts run it).
 */
export const LAYERS: readonly (readonly string[])[] = [
  ['core'],
  ['config', 'metrics'],
  ['redis', 'providers', 'cost'],
  ['messages', 'routing'],
  ['tenancy'],
  ['cache', 'telemetry', 'store'],
  ['upstream'],
  ['inbound'],
  ['http', 'admin', 'ui'],
  ['.'],
];

const folderOf = (module: string): string => (module.includes('/') ? module.split('/')[0] : '.');
const layerOf = (folder: string): number => LAYERS.findIndex((l) => l.includes(folder));

/** Every import edge that leaves its folder for one that is not in a lower layer (or is in no layer at all). */
export function layerViolations(graph: Graph): string[] {
  return Object.entries(graph).flatMap(([from, tos]) => {
    const f = folderOf(from);
    return tos
      .filter((to) => {
        const t = folderOf(to);
        if (t === f) return false;
        const lf = layerOf(f);
        const lt = layerOf(t);
        return lf < 0 || lt < 0 || lt >= lf;
      })
      .map((to) => `${from} -> ${to}`);
  });
}

type Graph = Record<string, string[]>;

/** Every import edge (from, to) where `from` is in one of the dirs and `to` satisfies the predicate. */
function edges(graph: Graph, fromDirs: string[], bad: (to: string) => boolean): string[] {
  return Object.entries(graph).flatMap(([from, tos]) => (fromDirs.includes(from.split('/')[0]) ? tos.filter(bad).map((to) => `${from} -> ${to}`) : []));
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
    assert.deepEqual(
      cycles.map((c) => c.join(' > ')),
      [],
    );
  });

  it('every folder is in the layer order', () => {
    const folders = [...new Set(Object.keys(graph).map(folderOf))];
    assert.deepEqual(
      folders.filter((f) => layerOf(f) < 0),
      [],
    );
  });

  it('imports point down the layer order: none upward, none sideways between folders of one layer', () => {
    assert.deepEqual(layerViolations(graph), []);
  });

  it('core/ imports only core/', () => {
    assert.deepEqual(
      edges(graph, ['core'], (to) => !to.startsWith('core/')),
      [],
    );
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
    const bad: Graph = {
      'upstream/a.ts': ['http/errors.ts', 'core/ok.ts', 'upstream/b.ts'],
      'core/x.ts': ['routing/y.ts'],
      'cache/c.ts': ['telemetry/t.ts'],
      'nowhere/n.ts': ['core/ok.ts'],
      'app.ts': ['http/h.ts'],
    };
    assert.deepEqual(layerViolations(bad), ['upstream/a.ts -> http/errors.ts', 'core/x.ts -> routing/y.ts', 'cache/c.ts -> telemetry/t.ts', 'nowhere/n.ts -> core/ok.ts']);
    assert.deepEqual(
      edges(bad, ['core'], (to) => !to.startsWith('core/')),
      ['core/x.ts -> routing/y.ts'],
    );
  });
});
