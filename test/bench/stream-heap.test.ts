/**
 * bench/stream-heap.ts's pure parts: a heap snapshot's bytes by kind of object, and the heap per
 * stream between an idle and an open snapshot.
 */
import assert from 'node:assert/strict';
import { heapByKind, perStream } from '../../bench/stream-heap';

/** A snapshot in V8's format: nodes as flat rows of node_fields, names as indexes into strings. */
function snapshot(rows: Array<[type: number, name: string, size: number]>) {
  const strings: string[] = [];
  const nodes = rows.flatMap(([type, name, size], id) => {
    strings.push(name);
    return [type, strings.length - 1, id, size, 0];
  });
  return {
    snapshot: {
      meta: {
        node_fields: ['type', 'name', 'id', 'self_size', 'edge_count'],
        node_types: [['hidden', 'array', 'string', 'object', 'code', 'closure', 'regexp', 'number', 'native', 'synthetic', 'concatenated string', 'sliced string']] as [string[]],
      },
    },
    nodes,
    strings,
  };
}

describe('bench: JS heap per open stream (stream-heap)', () => {
  it('sums bytes by kind: objects by constructor, every string form as one kind, closures as one', () => {
    const kinds = heapByKind(
      snapshot([
        [3, 'Socket', 200],
        [3, 'Socket', 200],
        [2, 'hello', 24],
        [10, '(concatenated string)', 32],
        [5, 'onData', 56],
        [5, 'relay', 56],
      ]),
    );
    assert.deepEqual(kinds.get('object Socket'), { count: 2, bytes: 400 });
    assert.deepEqual(kinds.get('strings'), { count: 2, bytes: 56 });
    assert.deepEqual(kinds.get('closure'), { count: 2, bytes: 112 });
  });

  it('divides what grew between the idle and the open snapshot by the streams, largest kinds first', () => {
    const idle = heapByKind(
      snapshot([
        [3, 'Socket', 200],
        [2, 'x', 1024],
      ]),
    );
    const open = heapByKind(
      snapshot([
        [3, 'Socket', 200],
        [3, 'Socket', 200],
        [3, 'Socket', 200],
        [2, 'x', 1024],
        [2, 'prompt', 4096],
        [2, 'prompt', 4096],
        [5, 'f', 56],
        [5, 'f', 56],
      ]),
    );
    const r = perStream(idle, open, 2, 2);
    assert.equal(r.perStreamKb, round2((2 * 200 + 2 * 4096 + 2 * 56) / 2 / 1024));
    assert.deepEqual(r.top, [
      { kind: 'strings', count: 1, bytes: 4096 },
      { kind: 'object Socket', count: 1, bytes: 200 },
    ]);
  });
});

const round2 = (x: number) => Math.round(x * 100) / 100;
