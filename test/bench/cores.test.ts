import assert from 'node:assert/strict';
import { cannotIsolate, onCpus } from '../../bench/cores';

describe('bench: placing processes on cores (cores)', () => {
  it('isolates only with taskset and at least two CPUs, and says why not', () => {
    assert.equal(cannotIsolate(2, true), null);
    assert.equal(cannotIsolate(8, true), null);
    assert.match(cannotIsolate(1, true)!, /1 CPU: a proxy cannot have a core of its own/);
    assert.match(cannotIsolate(4, false)!, /taskset is not installed/);
  });

  it('starts a process on the given cores through taskset', () => {
    assert.deepEqual(onCpus('1'), ['taskset', '--cpu-list', '1']);
  });
});
