/** The CPU comparisons' table (bench/cpu-rounds.ts): medians per target and ratios over node-floor. */
import assert from 'node:assert/strict';
import { cpuRows, renderCpuRows } from '../../bench/cpu-rounds';

describe('bench: CPU rounds', () => {
  it('each target: the median of its rounds (nearest rank: the lower middle of an even count) and its ratio over node-floor', () => {
    const rows = cpuRows(
      new Map([
        ['node-floor', [70, 60, 80]],
        ['gateway', [150, 210, 140, 170]],
      ]),
    );
    assert.deepEqual(rows, [
      { target: 'node-floor', rounds: [70, 60, 80], medianUs: 70, overFloor: 1 },
      { target: 'gateway', rounds: [150, 210, 140, 170], medianUs: 150, overFloor: 2.14 },
    ]);
    assert.match(renderCpuRows('CPU per request', 'request', rows), /\| gateway \| 150 \| 2.14 \| 150, 210, 140, 170 \|/);
  });

  it('no node-floor rounds: no ratio rather than a wrong one', () => {
    assert.deepEqual(cpuRows(new Map([['gateway', [100]]]))[0].overFloor, null);
  });
});
