/**
 * The one way a client key is hashed (`sha256:<hex>`): the gateway compares presented keys by it
 * (tenancy/keys.ts) and the Pulumi program hashes the smoke probe's key with it (infra/config.ts).
 * In core so both can import it without infra reaching into tenancy.
 */
import { hash } from 'node:crypto';

export function hashKey(key: string): string {
  return `sha256:${keyDigest(key).toString('hex')}`;
}

/** sha256 of the key's UTF-8 bytes, one shot (crypto.hash: no Hash object per request, about half the cost of createHash). */
export function keyDigest(key: string): Buffer {
  return hash('sha256', key, 'buffer');
}
