/** Reads an upstream body into memory with a size cap (a huge body is a provider fault, not an OOM). */
import type { Readable } from 'node:stream';

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`upstream body larger than ${limit} bytes`);
  }
}

export async function readCapped(body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      throw new BodyTooLargeError(limit);
    }
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
}

/** Best effort: the first `limit` bytes of an error body, or '' if it cannot be read. */
export async function readErrorBody(body: Readable, limit = 64 * 1024): Promise<string> {
  try {
    return (await readCapped(body, limit)).toString('utf8');
  } catch {
    body.destroy();
    return '';
  }
}
