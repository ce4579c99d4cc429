/**
 * bench/socket-floor.ts: the per-stream arithmetic, the two sides summed per set of node flags,
 * the verdict against the open-streams goal, and both measured processes run for real with a
 * few streams (their protocol with the phase: a port, then one result line).
 */
import assert from 'node:assert/strict';
import { measureSide, perStreamKb, proxyFloor, renderSocketFloor, SocketFloorRow } from '../../bench/socket-floor';
import { socketFloorCheck } from '../../bench/report';

const KB = 1024;

describe('bench: what node:http and undici hold per open stream (socket-floor)', () => {
  it('divides the growth over the idle footprint by the streams, in KB', () => {
    const idle = { rss: 50_000 * KB, heapUsed: 8_000 * KB, youngGen: 1_024 * KB };
    const open = { rss: 50_000 * KB + 100 * 12.5 * KB, heapUsed: 8_000 * KB + 100 * 5 * KB, youngGen: 2_048 * KB };
    assert.deepEqual(perStreamKb(idle, open, 100), { rssKb: 12.5, heapKb: 5, youngGenKb: 10.24 });
  });

  it('sums the server and the client side under each set of flags, one young generation counted once, and reads the goal against the least sum', () => {
    const rows: SocketFloorRow[] = [
      { side: 'node:http server', flags: '--max-semi-space-size=16', rssKb: 14.74, heapKb: 5.15, youngGenKb: 2.48 },
      { side: 'undici client', flags: '--max-semi-space-size=16', rssKb: 11.56, heapKb: 6.68, youngGenKb: 2.48 },
      { side: 'node:http server', flags: '--max-semi-space-size=1', rssKb: 12.61, heapKb: 5.14, youngGenKb: 0 },
      { side: 'undici client', flags: '--max-semi-space-size=1', rssKb: 12.7, heapKb: 6.68, youngGenKb: 0 },
      { side: 'plain TCP client', flags: '--max-semi-space-size=1', rssKb: 2.69, heapKb: 1.08, youngGenKb: 0 },
    ];
    assert.deepEqual(proxyFloor(rows), [
      { flags: '--max-semi-space-size=16', client: 'undici client', rssKb: 23.82, heapKb: 11.83, youngGenKb: 2.48 },
      { flags: '--max-semi-space-size=1', client: 'undici client', rssKb: 25.31, heapKb: 11.82, youngGenKb: 0 },
    ]);
    // The plain socket was measured under one set of flags only: no sum for the other.
    assert.deepEqual(proxyFloor(rows, 'plain TCP client'), [{ flags: '--max-semi-space-size=1', client: 'plain TCP client', rssKb: 15.3, heapKb: 6.22, youngGenKb: 0 }]);
    const md = renderSocketFloor(rows, 9900);
    assert.match(md, /\| \*\*node:http server \+ undici client\*\* \| `--max-semi-space-size=1` \| \*\*25.31 KB\*\*/);
    assert.match(
      md,
      /The least node:http and undici hold together here is 23.82 KB \(over the goal\); node:http with a plain TCP socket to the provider, no HTTP parser on that side, 15.3 KB \(under the goal by 0.7 KB\)/,
    );
    const row = socketFloorCheck(rows);
    assert.equal(row.met, null);
    assert.equal(
      row.measured,
      '23.82 KB with `--max-semi-space-size=16` (JS heap 11.83 KB); 25.31 KB with `--max-semi-space-size=1` (JS heap 11.82 KB); node:http with a plain TCP socket out, no parser: 15.3 KB',
    );
    const under = renderSocketFloor(
      rows.map((r) => ({ ...r, rssKb: 7 })),
      9900,
    );
    assert.match(under, /hold together here is 11.52 KB \(under the goal by 4.48 KB\)/);
  });

  for (const side of ['node:http server', 'undici client', 'plain TCP client'] as const) {
    it(`measures the ${side} side in processes of its own, and stops them`, async function () {
      this.timeout(30_000);
      const row = await measureSide(side, 40, ['--max-semi-space-size=1'], { ...process.env, SOCKET_FLOOR_SETTLE_MS: '300' });
      assert.equal(row.side, side);
      assert.equal(row.flags, '--max-semi-space-size=1');
      // 40 streams hold a few KB of heap each; the RSS of so few is noise, but a number.
      assert.ok(row.heapKb > 0.5 && row.heapKb < 200, `heap per stream ${row.heapKb} KB`);
      assert.ok(Number.isFinite(row.rssKb));
    });
  }
});
