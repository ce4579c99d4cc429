/** Reads an upstream body into memory with a size cap (a huge body is a provider fault, not an OOM). */
import type { Readable } from 'node:stream';
import { PrematureCloseError } from './body-chunks';

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`upstream body larger than ${limit} bytes`);
  }
}

/**
 * The whole body, read with `data` events (cheaper per chunk than `for await`, which runs an
 * async generator); a body over `limit` is destroyed and rejected with BodyTooLargeError, one
 * that closes before its end rejects with PrematureCloseError.
 */
export function readCapped(body: Readable, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (err: unknown, value?: Buffer) => {
      if (settled) return;
      settled = true;
      body.off('data', onData);
      if (err) reject(err);
      else resolve(value!);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      settle(new BodyTooLargeError(limit));
      body.destroy();
    };
    body.on('data', onData);
    body.once('end', () => settle(undefined, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)));
    body.on('error', (err) => settle(err)); // stays: a later error on a destroyed body must not go unhandled
    // Built only when it is one: an Error captures a stack, and every body closes after its end.
    body.once('close', () => settled || settle(new PrematureCloseError()));
  });
}

/** The longest provider error body kept to relay or log; a longer one is given as ''. */
export const ERROR_BODY_LIMIT = 64 * 1024;

/** Best effort: an error body of up to `limit` bytes, or '' if it is longer or cannot be read. */
export async function readErrorBody(body: Readable, limit = ERROR_BODY_LIMIT): Promise<string> {
  try {
    return (await readCapped(body, limit)).toString('utf8');
  } catch {
    body.destroy();
    return '';
  }
}
