/** infra/ imports only service/config and service/core from the gateway, and has no import cycle (issue 20, item 6). */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, normalize } from 'node:path';
import { ROOT } from './helpers';

/** Every relative import of each infra/*.ts file (type-only imports included: a cycle of types is still a cycle). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of readdirSync(join(ROOT, 'infra')).filter((n) => n.endsWith('.ts'))) {
    const text = readFileSync(join(ROOT, 'infra', f), 'utf8');
    const deps = [...text.matchAll(/from '(\.[^']+)'/g)].map((m) => normalize(join('infra', m[1])));
    graph.set(normalize(join('infra', f.replace(/\.ts$/, ''))), deps);
  }
  return graph;
}

function cycles(graph: Map<string, string[]>): string[] {
  const found: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (n: string, path: string[]) => {
    state.set(n, 'open');
    for (const d of graph.get(n) ?? []) {
      if (state.get(d) === 'open') found.push([...path.slice(path.indexOf(d)), d].join(' -> '));
      else if (!state.has(d) && graph.has(d)) visit(d, [...path, d]);
    }
    state.set(n, 'done');
  };
  for (const n of graph.keys()) if (!state.has(n)) visit(n, [n]);
  return found;
}

describe('infra: layers', () => {
  it('imports from the gateway only service/config and service/core', () => {
    const outside = [...importGraph()].flatMap(([f, deps]) => deps.filter((d) => d.startsWith('service/') && !/^service\/(config|core)\//.test(d)).map((d) => `${f} -> ${d}`));
    assert.deepEqual(outside, []);
  });

  it('has no import cycle', () => {
    assert.deepEqual(cycles(importGraph()), []);
  });

  it('the checker sees a cycle when there is one', () => {
    assert.deepEqual(
      cycles(
        new Map([
          ['a', ['b']],
          ['b', ['a']],
        ]),
      ),
      ['a -> b -> a'],
    );
  });
});
