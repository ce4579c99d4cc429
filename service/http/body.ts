/**
 * JSON body reading for the inspected endpoints, on a plain node:http request: JSON only
 * (415), a size limit on the bytes read and, for gzip/deflate/br bodies, on the inflated
 * bytes too (413; never more than the limit is buffered), valid UTF-8, bounded nesting and
 * parse errors as 400, all in the OpenAI error shape. It answers exactly as body-parser's
 * express.json did before (the checks, their order, the empty-body and BOM cases, draining
 * a refused body before answering), without Express.
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import zlib from 'node:zlib';
import { parse as parseContentType } from 'content-type';
import iconv from 'iconv-lite';
import { GatewayError, payloadTooLarge } from '../core/errors';

/** Deeper JSON than this is refused before parsing (no legitimate request comes close). */
export const MAX_JSON_DEPTH = 64;

const JSON_TYPE = /^application\/([\w.+-]*\+)?json\b/i;
const FIRST_NON_WHITESPACE = /^[\x20\x09\x0a\x0d]*([^\x20\x09\x0a\x0d]|$)/;

const invalidBody = (message: string, code: string) => new GatewayError(400, 'invalid_request_error', code, message);
const unsupportedType = () => new GatewayError(415, 'invalid_request_error', 'unsupported_media_type', 'The request body must be JSON, sent with Content-Type: application/json.');
const unsupportedEncoding = () => new GatewayError(415, 'invalid_request_error', 'unsupported_media_type', 'The request body must be UTF-8 JSON, without content encoding.');
const clientClosed = () => new GatewayError(400, 'invalid_request_error', 'client_closed_request', 'The client closed the request while sending it.');
const unreadable = () => invalidBody('The request body could not be read.', 'invalid_body');

/**
 * Deepest nesting of objects/arrays in JSON text, ignoring brackets inside strings. Stops early past `limit`.
 * A string is skipped with String#indexOf to its closing quote (one not escaped by an odd run of
 * backslashes), not a character at a time: a prompt is mostly string, so this takes about a tenth
 * of the per-byte loop's time (21 against 224 µs for a 100 KB conversation, Node 24; on the
 * bytes, Buffer#indexOf's call costs twice as much).
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      i = closingQuote(text, i);
      if (i < 0) return false; // an unterminated string: no bracket after it counts (the parse refuses it)
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** The index of the quote that closes the string opened at `open`, or -1 if none does. */
function closingQuote(text: string, open: number): number {
  for (let from = open + 1; ;) {
    const q = text.indexOf('"', from);
    if (q < 0) return -1;
    let k = q - 1;
    while (text.charCodeAt(k) === 0x5c) k--; // stops at the opening quote at the latest
    if (((q - 1 - k) & 1) === 0) return q;
    from = q + 1;
  }
}

/** Nothing more will come from this request (upgraded, socket gone, or already read). */
function requestFinished(req: IncomingMessage): boolean {
  return Boolean((req as { upgrade?: boolean }).upgrade || !req.socket || !req.socket.readable || (req.complete && !req.readable));
}

/** A body is announced by Transfer-Encoding or a numeric Content-Length (0 included). */
function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || !Number.isNaN(Number(req.headers['content-length']));
}

function decompressor(encoding: string): Transform | undefined {
  switch (encoding) {
    case 'gzip':
      return zlib.createGunzip();
    case 'deflate':
      return zlib.createInflate();
    case 'br':
      return zlib.createBrotliDecompress();
    default:
      return undefined;
  }
}

/** Reads off the rest of a refused request (so the connection can carry the next one), then calls back. */
function drain(req: IncomingMessage, done: () => void): void {
  if (requestFinished(req)) return done();
  let called = false;
  const once = () => {
    if (called) return;
    called = true;
    req.off('end', once);
    req.socket?.off('close', once);
    done();
  };
  req.on('end', once);
  req.socket?.on('close', once);
  req.resume();
}

/** Checks and parses the bytes of a complete body (body-parser's verify, decode and strict parse). */
function parseBody(buf: Buffer, charset: string): unknown {
  if (!isUtf8(buf)) throw invalidBody('The request body is not valid UTF-8.', 'invalid_encoding');
  let text: string;
  if (charset === 'utf-8') {
    text = buf.toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte order mark is not part of the JSON
  } else {
    text = iconv.decode(buf, charset);
  }
  // Before the parse: deep nesting is refused without building it (a cheap body, a costly tree).
  if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) throw invalidBody(`The request body nests JSON deeper than ${MAX_JSON_DEPTH} levels.`, 'json_too_deep');
  if (text.length === 0) return {}; // an empty body reads as {}: a common client mistake, then refused by validation
  // Strict: an object or an array at the top, after optional whitespace.
  const c = text.charCodeAt(0);
  if (c !== 0x7b && c !== 0x5b) {
    const first = FIRST_NON_WHITESPACE.exec(text)![1];
    if (first !== '{' && first !== '[') throw invalidBody('We could not parse the JSON body of your request. Send valid JSON.', 'invalid_json');
  }
  try {
    return JSON.parse(text);
  } catch {
    throw invalidBody('We could not parse the JSON body of your request. Send valid JSON.', 'invalid_json');
  }
}

/**
 * The parsed JSON body of a request, or undefined when it announces none. Rejects with a
 * GatewayError; a body refused for its size or a broken encoding is read off first.
 */
export function readJsonBody(req: IncomingMessage, limitBytes: number, opts: { anyContentType?: boolean } = {}): Promise<unknown> {
  // anyContentType (the pass-through): parsed as UTF-8 JSON whatever the Content-Type claims.
  const type = opts.anyContentType && !JSON_TYPE.test(req.headers['content-type'] ?? '') ? 'application/json' : req.headers['content-type'];
  if (!type || !JSON_TYPE.test(type)) return Promise.reject(unsupportedType());
  if (requestFinished(req) || !hasBody(req)) return Promise.resolve(undefined);
  const charset = type === 'application/json' ? 'utf-8' : parseContentType(type).parameters.charset?.toLowerCase() || 'utf-8';
  if (!charset.startsWith('utf-') || (charset !== 'utf-8' && !iconv.encodingExists(charset))) return Promise.reject(unsupportedEncoding());
  const contentEncoding = (req.headers['content-encoding'] || 'identity').toLowerCase();
  let inflate: Transform | undefined;
  if (contentEncoding !== 'identity') {
    inflate = decompressor(contentEncoding);
    if (!inflate) return Promise.reject(unsupportedEncoding());
    req.pipe(inflate);
  }
  return new Promise((resolve, reject) => readStream(req, inflate, charset, limitBytes, resolve, reject));
}

/** Reads the request, or the inflating stream it is piped into, up to `limit` bytes (raw-body's rules). */
function readStream(req: IncomingMessage, inflate: Transform | undefined, charset: string, limit: number, resolve: (body: unknown) => void, reject: (err: unknown) => void): void {
  const stream: Readable = inflate ?? req;
  const declared = inflate ? undefined : req.headers['content-length'];
  const length = declared !== undefined && !Number.isNaN(Number(declared)) ? parseInt(declared, 10) : null;
  const chunks: Buffer[] = [];
  let received = 0;
  let complete = false;

  const cleanup = () => {
    complete = true;
    stream.off('data', onData).off('end', onEnd).off('error', onError);
    req.off('aborted', onAborted).off('close', onClose);
  };
  // Stop reading, then answer once the rest of the request is read off.
  const fail = (err: GatewayError) => {
    cleanup();
    if (inflate) {
      req.unpipe(inflate);
      inflate.destroy();
    }
    drain(req, () => reject(err));
  };
  const onData = (chunk: Buffer) => {
    if (complete) return;
    received += chunk.length;
    if (received > limit) fail(payloadTooLarge(limit));
    else chunks.push(chunk);
  };
  const onEnd = () => {
    if (complete) return;
    if (length !== null && received !== length) return fail(invalidBody('The request body length does not match Content-Length.', 'invalid_body'));
    cleanup();
    if (inflate) {
      req.unpipe(inflate);
      inflate.on('error', () => undefined);
      inflate.destroy();
      req.resume(); // whatever followed the compressed stream
    }
    try {
      resolve(parseBody(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received), charset));
    } catch (err) {
      reject(err);
    }
  };
  const onError = () => {
    if (!complete) fail(unreadable()); // a broken compressed stream
  };
  const onAborted = () => {
    if (!complete) fail(clientClosed());
  };
  const onClose = () => {
    if (!req.complete) onAborted();
  };

  if (length !== null && length > limit) return fail(payloadTooLarge(limit));
  if (!stream.readable) return fail(unreadable());
  stream.on('data', onData).on('end', onEnd).on('error', onError);
  req.on('aborted', onAborted).on('close', onClose);
}
