import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cannotIsolate, cpusOf, isolate, onCpus, PlacementError } from '../../bench/cores';

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

  it('places processes and puts them back, and puts back the ones it placed when another cannot be placed', async function () {
    const why = cannotIsolate();
    if (why) this.skip(); // needs taskset and two CPUs, as the phase does
    // Started on CPU 1 only: putting it back must restore that, not every core.
    const child = spawn('taskset', ['--cpu-list', '1', 'sleep', '30'], { stdio: 'ignore' });
    try {
      const pid = child.pid!;
      for (const until = Date.now() + 2000; cpusOf(pid) !== '1' && Date.now() < until;) await new Promise((r) => setTimeout(r, 10));
      const had = cpusOf(pid);
      assert.equal(had, '1');
      const undo = isolate([pid], []);
      assert.equal(cpusOf(pid), '0');
      undo();
      assert.equal(cpusOf(pid), had);
      // A pid that does not exist: the child, already placed, is put back and the error says which.
      const missing = Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());
      assert.throws(
        () => isolate([pid], [missing]),
        (err: unknown) => err instanceof PlacementError && err.message.includes(String(missing)),
      );
      assert.equal(cpusOf(pid), had);
      assert.throws(() => cpusOf(missing), PlacementError);
    } finally {
      child.kill();
    }
  });
});
