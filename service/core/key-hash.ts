/**
 * The one way a client key is hashed (`sha256:<hex>`): the gateway compares presented keys by it
 * (tenancy/keys.ts) and the Pulumi program hashes the smoke probe's key with it (infra/config.ts).
 * In core so both can import it without infra reaching into tenancy.
 */
import { hash } from 'node:crypto';

export function hashKey(key: string): string {
  return `sha256:${keyDigest(key)}`;
}

/** sha256 of the key's UTF-8 bytes in lower-case hex, one shot (crypto.hash: no Hash object; a hex string costs a third of a Buffer result on Node 24). */
export function keyDigest(key: string): string {
  return hash('sha256', key, 'hex');
}
