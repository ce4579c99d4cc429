/** The side-by-side comparisons' table (bench/side-by-side.ts): medians per target and ratios over node-floor. */
import assert from 'node:assert/strict';
import { sideBySideRows, renderSideBySide } from '../../bench/side-by-side';

describe('bench: side by side against node-floor', () => {
  it('each target: the median of its rounds (nearest rank: the lower middle of an even count) and its ratio over node-floor', () => {
    const rows = sideBySideRows(
      new Map([
        ['node-floor', [70, 60, 80]],
        ['gateway', [150, 210, 140, 170]],
      ]),
    );
    assert.deepEqual(rows, [
      { target: 'node-floor', rounds: [70, 60, 80], medianUs: 70, overFloor: 1, minusFloorUs: 0 },
      { target: 'gateway', rounds: [150, 210, 140, 170], medianUs: 150, overFloor: 2.14, minusFloorUs: 80 },
    ]);
    assert.match(renderSideBySide('CPU per request', 'µs/request', rows), /\| gateway \| 150 \| 2.14 \| 150, 210, 140, 170 \|/);
  });

  it('latency figures against node-floor as a difference', () => {
    const rows = sideBySideRows(
      new Map([
        ['node-floor', [1200]],
        ['gateway', [1900]],
      ]),
    );
    assert.match(renderSideBySide('First byte', 'µs first byte', rows, 'difference'), /minus node-floor, µs \|[\s\S]*\| gateway \| 1900 \| 700 \| 1900 \|/);
  });

  it('no node-floor rounds: no ratio rather than a wrong one', () => {
    assert.deepEqual(sideBySideRows(new Map([['gateway', [100]]]))[0].overFloor, null);
  });
});
