/**
 * The cold-start phase's pure parts (bench/cold-start-model.ts, bench/cold-start.ts): Envoy's
 * slow-start share, the p99 of each window by issue time, and a run's row.
 */
import assert from 'node:assert/strict';
import { latencyWindows, slowStartShare } from '../../bench/cold-start-model';
import { coldStartRow, renderColdStart } from '../../bench/cold-start';
import type { RateResult } from '../../bench/loadgen';

describe('bench: a new process under its full share or a slow start', () => {
  it("slowStartShare is Envoy's linear slow start: max(10 %, max(t, 1) / window), all of it from the window's end", () => {
    assert.equal(slowStartShare(0, 30), 0.1, 'the minimum weight while max(t, 1) / window is below it');
    assert.equal(slowStartShare(2.9, 30), 0.1);
    assert.equal(slowStartShare(6, 30), 0.2);
    assert.equal(slowStartShare(15, 30), 0.5);
    assert.equal(slowStartShare(30, 30), 1);
    assert.equal(slowStartShare(45, 30), 1);
    assert.equal(slowStartShare(0.5, 5), 0.2, 'max(t, 1): the first second counts as one');
    assert.equal(slowStartShare(3, 0), 1, 'a window of 0 is no slow start');
  });

  it('latencyWindows: each window holds the requests issued in it, with their p99', () => {
    const timed: [number, number][] = [];
    for (let i = 0; i < 100; i++) timed.push([i * 2, i === 99 ? 900_000 : 1_000 + i]); // 0..198 ms: the first window, one slow request at the end
    for (let i = 0; i < 50; i++) timed.push([500 + i, 2_000]);
    timed.push([1_600, 5_000]); // past the run: not counted
    const w = latencyWindows(timed, 500, 1_500);
    assert.deepEqual(
      w.map((x) => [x.fromMs, x.requests]),
      [
        [0, 100],
        [500, 50],
        [1000, 0],
      ],
    );
    assert.equal(w[0].p99Us, 1_098, 'the 99th of 100 ascending latencies, the slow 100th above it');
    assert.equal(w[1].p99Us, 2_000);
    assert.equal(w[2].p99Us, null);
  });

  it("a run's row: overall p99, the first second's, the worst half second and when it was", () => {
    const r: RateResult = {
      mode: 'rate',
      sent: 10,
      ok: 9,
      errors: 1,
      achievedRate: 5,
      issuedTotal: 10,
      latenciesUs: [1_000, 2_000, 3_000, 4_000, 5_000, 6_000, 7_000, 8_000, 250_000],
      windows: [
        { fromMs: 0, requests: 3, p99Us: 40_000 },
        { fromMs: 500, requests: 3, p99Us: 90_000 },
        { fromMs: 1000, requests: 3, p99Us: 250_000 },
        { fromMs: 1500, requests: 0, p99Us: null },
      ],
    };
    const row = coldStartRow('gateway', 'full', 1, r);
    assert.deepEqual(row, {
      target: 'gateway',
      schedule: 'full',
      round: 1,
      requests: 9,
      errors: 1,
      p99Ms: 250,
      firstSecondP99Ms: 90,
      worst: { fromMs: 1000, p99Ms: 250 },
      windowsP99Ms: [40, 90, 250, null],
    });
    const md = renderColdStart([row], { rate: 3000, windowSeconds: 30, seconds: 2, rounds: 1 });
    assert.match(md, /full 3,000 req\/s at once, or Envoy's slow start over 30 s/);
    assert.match(md, /\| gateway \| full \| 1 \| 9 \| 1 \| 250 \| 90 \| 250 \(1 s\) \| 40, 90, 250, – \|/);
  });
});
