/**
 * freePort (test/helpers/ports.ts) hands out ports below the kernel's ephemeral range, so a server
 * restarted on its port cannot find it taken by some connection's local port meanwhile.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { freePort } from '../helpers/ports';

describe('test helpers: freePort', () => {
  it('returns distinct bindable ports below the ephemeral range', async () => {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const port of ports) {
      assert.ok(port >= 20_000 && port < low, `${port} is not in [20000, ${low})`);
      await new Promise<void>((resolve, reject) => {
        const srv = createServer().once('error', reject);
        srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()));
      });
    }
    assert.ok(new Set(ports).size >= 19, `mostly distinct: ${ports.join(', ')}`);
  });
});
