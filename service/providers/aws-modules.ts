/**
 * The AWS pieces only Bedrock uses: the SigV4 signer with its SHA-256, and the event-stream codec.
 * Loaded on first use, and at start-up when a Bedrock provider is configured (bedrockAdapter.prepare):
 * a gateway without one never loads them (about 2 MB of heap that every full collection would mark,
 * and ~90 ms of start-up, measured on Node 24 here).
 */
import type { Sha256 } from '@aws-crypto/sha256-js';
import type { EventStreamCodec } from '@smithy/eventstream-codec';
import type { SignatureV4 } from '@smithy/signature-v4';

export interface AwsModules {
  SignatureV4: typeof SignatureV4;
  Sha256: typeof Sha256;
  codec: EventStreamCodec;
  toUtf8(bytes: Uint8Array): string;
}

let loaded: AwsModules | undefined;

export function awsModules(): AwsModules {
  if (loaded) return loaded;
  const { SignatureV4: Signer } = require('@smithy/signature-v4') as typeof import('@smithy/signature-v4');
  const { Sha256: Hash } = require('@aws-crypto/sha256-js') as typeof import('@aws-crypto/sha256-js');
  const { EventStreamCodec: Codec } = require('@smithy/eventstream-codec') as typeof import('@smithy/eventstream-codec');
  const { fromUtf8, toUtf8 } = require('@smithy/util-utf8') as typeof import('@smithy/util-utf8');
  loaded = { SignatureV4: Signer, Sha256: Hash, codec: new Codec(toUtf8, fromUtf8), toUtf8 };
  return loaded;
}
