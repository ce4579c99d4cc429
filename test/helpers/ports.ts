import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Ports from here up to the kernel's ephemeral range are the ones handed out (the usual services sit below). */
const LOWEST = 20_000;

/**
 * The lowest port Linux gives an outgoing connection as its local port (ip_local_port_range);
 * 32768 when it cannot be read.
 */
function ephemeralLow(): number {
  try {
    const lo = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(lo) && lo > 0 ? lo : 32_768;
  } catch {
    return 32_768;
  }
}

/** Binds `port` on 127.0.0.1 (0: the kernel's choice) and releases it; the port, or undefined when it is taken. */
function tryPort(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = createServer().once('error', () => resolve(undefined));
    srv.listen(port, '127.0.0.1', () => {
      const bound = (srv.address() as { port: number }).port;
      srv.close(() => resolve(bound));
    });
  });
}

/**
 * A port free on 127.0.0.1 right now (bound, read, released), below the kernel's ephemeral range:
 * no outgoing connection takes such a port as its local port. A server stopped and started again
 * on its port (Redis in the fault suites) leaves it free meanwhile, and a client of the same
 * machine reconnecting or opening connections could otherwise take it: in one CI run a Redis
 * restarted by test/faults/redis-startup.test.ts found its ephemeral-range port in use.
 */
export async function freePort(): Promise<number> {
  const high = ephemeralLow();
  for (let i = 0; high > LOWEST && i < 100; i++) {
    const port = await tryPort(LOWEST + Math.floor(Math.random() * (high - LOWEST)));
    if (port !== undefined) return port;
  }
  const port = await tryPort(0);
  if (port === undefined) throw new Error('no free port on 127.0.0.1');
  return port;
}
