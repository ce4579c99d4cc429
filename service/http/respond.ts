/**
 * Writing JSON responses and errors on a plain node:http response, byte for byte what
 * Express's res.json/res.send wrote (same headers, same order), so the Express app and the
 * inference fast path answer alike.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { GatewayError, toGatewayError } from '../core/errors';
import { openAiErrors } from '../inbound/errors';
import type { ErrorShape } from '../inbound/types';
import { recordOf } from './request-context';

/** Sends a JSON text (or bytes already holding JSON) with its length. */
export function sendJson(res: ServerResponse, status: number, body: string | Buffer): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', typeof body === 'string' ? Buffer.byteLength(body) : body.length);
  res.end(body);
}

/** The one place errors become responses: the inbound API's error shape (OpenAI's unless said), its headers, and the error code in the log line. */
export function sendError(logger: Logger, res: ServerResponse, err: unknown, shape: ErrorShape = openAiErrors): void {
  const e = toGatewayError(err);
  const rec = recordOf(res);
  if (!(err instanceof GatewayError)) logger.error({ request_id: rec.requestId, err: { message: (err as Error)?.message, stack: (err as Error)?.stack } }, 'unhandled error');
  rec.errorCode = e.code;
  if (res.headersSent) {
    if (!res.writableEnded) res.end();
    return;
  }
  for (const k in e.headers) res.setHeader(k, e.headers[k]);
  sendJson(res, e.status, shape.body(e, rec.requestId));
}
