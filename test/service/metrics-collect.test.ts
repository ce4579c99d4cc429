/**
 * What a /metrics scrape does to the event loop: the open-descriptor gauge is read without
 * blocking it (prom-client's own lists /proc/self/fd synchronously, tens of ms at 10,000 streams),
 * and nothing walks every libuv handle (prom-client's active handle and resource gauges: 40 ms
 * at 19,800 handles).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createMetrics, PER_HANDLE_GAUGES } from '../../service/metrics/metrics';

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
      const listed = original('/proc/self/fd').length - 1; // less the descriptor of the listing itself
      assert.ok(Math.abs(Number(m[1]) - listed) <= 2, `${m[1]} open descriptors reported, ${listed} listed`);
      assert.deepEqual(
        syncListings.filter((p) => p.includes('/fd')),
        [],
      );
    } finally {
      (fs as { readdirSync: unknown }).readdirSync = original;
    }
  });

  it('walks no libuv handle list at a scrape (the per-handle gauges are not exported)', async () => {
    const { registry } = createMetrics();
    const walks: string[] = [];
    const proc = process as unknown as Record<string, unknown>;
    const originals = { _getActiveHandles: proc._getActiveHandles, getActiveResourcesInfo: proc.getActiveResourcesInfo };
    for (const [name, fn] of Object.entries(originals)) {
      proc[name] = (...a: unknown[]) => {
        walks.push(name);
        return (fn as (...x: unknown[]) => unknown).apply(process, a);
      };
    }
    try {
      const text = await registry.metrics();
      assert.deepEqual(walks, []);
      for (const name of PER_HANDLE_GAUGES) assert.ok(!new RegExp(`^${name}[ {]`, 'm').test(text), `${name} is not exported`);
      assert.match(text, /^aigw_nodejs_eventloop_lag_p99_seconds /m, "the rest of prom-client's process metrics stay");
    } finally {
      Object.assign(proc, originals);
    }
  });
});
