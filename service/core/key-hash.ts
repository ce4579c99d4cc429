/**
 * The one way a client key is hashed (`sha256:<hex>`): the gateway compares presented keys by it
 * (tenancy/keys.ts) and the Pulumi program hashes the smoke probe's key with it (infra/config.ts).
 * In core so both can import it without infra reaching into tenancy.
 */
import { createHash } from 'node:crypto';

export function hashKey(key: string): string {
  return `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}
