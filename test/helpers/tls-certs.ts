/**
 * Throwaway TLS material made with the openssl CLI for one test run: a CA, a server
 * certificate it signed (for 127.0.0.1 and the DNS name `redis.test`), and an unrelated CA
 * that did not sign it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCerts {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** A CA that did not sign the server certificate. */
  otherCaFile: string;
}

export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'aigw-tls-'));
  const f = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=aigw test CA');
  openssl('req', '-x509', ...ec, '-keyout', f('other-ca.key'), '-out', f('other-ca.crt'), '-days', '2', '-subj', '/CN=aigw other CA');
  openssl('req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=redis.test');
  writeFileSync(f('san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:redis.test\n');
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '2', '-extfile', f('san.cnf'));
  return { dir, caFile: f('ca.crt'), certFile: f('server.crt'), keyFile: f('server.key'), otherCaFile: f('other-ca.crt') };
}
