/**
 * What a /metrics scrape does to the event loop: the open-descriptor gauge is read without
 * blocking it (prom-client's own lists /proc/self/fd synchronously, tens of ms at 10,000 streams).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createMetrics } from '../../service/metrics/metrics';

describe('metrics collection', () => {
  it('reports aigw_process_open_fds without listing /proc/self/fd synchronously', async function () {
    if (process.platform !== 'linux') this.skip();
    const { registry } = createMetrics();
    const syncListings: string[] = [];
    const original = fs.readdirSync;
    (fs as { readdirSync: unknown }).readdirSync = (path: fs.PathLike, ...rest: unknown[]) => {
      syncListings.push(String(path));
      return (original as (...a: unknown[]) => unknown)(path, ...rest);
    };
    try {
      const text = await registry.metrics();
      const m = /^aigw_process_open_fds (\d+)$/m.exec(text);
      assert.ok(m, 'the gauge is exported');
      assert.ok(Number(m[1]) > 2, `a plausible count (${m[1]})`);
      assert.deepEqual(
        syncListings.filter((p) => p.includes('/fd')),
        [],
      );
    } finally {
      (fs as { readdirSync: unknown }).readdirSync = original;
    }
  });
});
