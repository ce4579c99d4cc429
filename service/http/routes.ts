/**
 * The route table of the inbound APIs: path -> handler, built once. The Express app registers
 * every entry and the node:http fast path looks exact paths up in the same map, so a route is
 * declared in one place.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { countMessageTokens } from '../inbound/count-tokens';
import { INBOUND } from '../inbound';
import { anthropicAuthorization, MESSAGES_INBOUND } from '../inbound/messages';
import { readJsonBody } from './body';
import type { GatewayContext } from './context';
import { pipelineRoute, resolveRoute } from './pipeline';
import { recordOf } from './request-context';
import { sendError, sendJson } from './respond';

/** A route's handler, with the table's own path (what the fast path tracks and traces it under). */
export type InboundRoute = ((req: IncomingMessage, res: ServerResponse) => Promise<void>) & { path: string };
export type InboundRoutes = ReadonlyMap<string, InboundRoute>;

/** POST /v1/messages/count_tokens: authenticated, the model resolved like a request's, the count estimated (no provider call). */
function countTokensRoute(ctx: GatewayContext): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const limit = ctx.config.server.body_limit_bytes;
  return async (req, res) => {
    const rec = recordOf(res);
    rec.endpoint = 'messages_count_tokens';
    try {
      rec.principal = ctx.tenancy.authenticate(anthropicAuthorization(req.headers));
      const count = countMessageTokens(await readJsonBody(req, limit));
      rec.model = resolveRoute(ctx, 'chat', { model: count.model, stream: false, clientWantsUsage: false, body: {} }).model;
      res.setHeader('x-gateway-estimated', 'true');
      sendJson(res, 200, JSON.stringify({ input_tokens: count.input_tokens }));
    } catch (err) {
      sendError(ctx.logger, res, err, MESSAGES_INBOUND.errors);
    }
  };
}

/** path -> handler; the keys are the paths themselves (lower case, no trailing slash: routeKey's form). */
export function inboundRoutes(ctx: GatewayContext): InboundRoutes {
  const routes = new Map<string, InboundRoute>();
  const add = (path: string, handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>) => routes.set(path, Object.assign(handler, { path }));
  for (const spec of INBOUND) add(spec.path, pipelineRoute(ctx, spec));
  add('/v1/messages/count_tokens', countTokensRoute(ctx));
  return routes;
}
