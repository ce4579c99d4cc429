/**
 * JSON body parsing for the inspected endpoints: size limit (413), JSON only (415),
 * valid UTF-8, bounded nesting, and parse errors as 400, all in the OpenAI error shape.
 */
import { isUtf8 } from 'node:buffer';
import type { NextFunction, Request, Response } from 'express';
import express from 'express';
import { GatewayError, payloadTooLarge } from './errors';

/** Deeper JSON than this is refused before parsing (no legitimate request comes close). */
export const MAX_JSON_DEPTH = 64;

const invalidBody = (message: string, code: string) => new GatewayError(400, 'invalid_request_error', code, message);

/** Deepest nesting of objects/arrays in JSON text, ignoring brackets inside strings. Stops early past `limit`. */
export function jsonDepthExceeds(buf: Buffer, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i];
    if (inString) {
      if (b === 0x5c) i++; // backslash: skip the escaped byte
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x7b || b === 0x5b) {
      if (++depth > limit) return true;
    } else if (b === 0x7d || b === 0x5d) depth--;
  }
  return false;
}

export function jsonBody(limitBytes: number) {
  const parse = express.json({
    limit: limitBytes,
    strict: true,
    type: () => true,
    verify: (_req, _res, buf) => {
      if (!isUtf8(buf)) throw invalidBody('The request body is not valid UTF-8.', 'invalid_encoding');
      if (jsonDepthExceeds(buf, MAX_JSON_DEPTH)) throw invalidBody(`The request body nests JSON deeper than ${MAX_JSON_DEPTH} levels.`, 'json_too_deep');
    },
  });
  return (req: Request, res: Response, next: NextFunction) => {
    const type = req.headers['content-type'];
    if (!type || !/^application\/([\w.+-]*\+)?json\b/i.test(type)) {
      next(new GatewayError(415, 'invalid_request_error', 'unsupported_media_type', 'The request body must be JSON, sent with Content-Type: application/json.'));
      return;
    }
    parse(req, res, (err?: unknown) => next(err ? bodyError(err, limitBytes) : undefined));
  };
}

/** Maps body-parser's errors to the OpenAI shape. */
function bodyError(err: unknown, limitBytes: number): unknown {
  if (err instanceof GatewayError) return err;
  const e = err as { type?: string; status?: number };
  switch (e.type) {
    case 'entity.too.large':
      return payloadTooLarge(limitBytes);
    case 'entity.parse.failed':
      return invalidBody('We could not parse the JSON body of your request. Send valid JSON.', 'invalid_json');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new GatewayError(415, 'invalid_request_error', 'unsupported_media_type', 'The request body must be UTF-8 JSON, without content encoding.');
    case 'request.aborted':
      return new GatewayError(400, 'invalid_request_error', 'client_closed_request', 'The client closed the request while sending it.');
    case 'request.size.invalid':
      return invalidBody('The request body length does not match Content-Length.', 'invalid_body');
    default:
      if ((err as { cause?: unknown })?.cause instanceof GatewayError) return (err as { cause: GatewayError }).cause;
      return invalidBody('The request body could not be read.', 'invalid_body');
  }
}
