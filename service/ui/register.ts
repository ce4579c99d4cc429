/**
 * The operator page: GET /ui (an HTML shell), /ui/app.js and /ui/app.css (hand-written, served from
 * memory), and GET /ui/api/budgets (admin key). The page loads without a key, asks for the admin key,
 * keeps it in sessionStorage and sends it as a Bearer header to the admin JSON endpoints
 * (/v1/gateway/spend, /v1/gateway/providers, /v1/gateway/keys); the key is never in a URL.
 *
 * One call wires it: registerUi(app, { config, isAdmin }) before the app's 404 handler.
 */
import type { NextFunction, Request, Response } from 'express';
import type express from 'express';
import type { GatewayConfig } from '../config/schema';
import { forbidden } from '../core/errors';
import { budgetTable } from './budgets';
import { PAGE_HTML } from './page';
import { APP_JS } from './script';
import { APP_CSS } from './style';

export interface UiDeps {
  config: GatewayConfig;
  /** True for a gateway admin key (the Authorization header as sent). */
  isAdmin(authorization: string | undefined): boolean;
  now?: () => number;
}

/**
 * Only same-origin script, style and fetch; no inline script or style, no frames, no forms posting
 * elsewhere, no plugins. The page builds its charts as SVG DOM nodes with presentation attributes,
 * never a style attribute: style-src without 'unsafe-inline' blocks `style="..."` and
 * setAttribute('style', ...) too (MDN, CSP style-src, "Violation cases":
 * https://developer.mozilla.org/docs/Web/HTTP/Headers/Content-Security-Policy/style-src).
 */
export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function send(res: Response, type: string, body: string): void {
  res.set({
    'content-type': type,
    'content-security-policy': UI_CSP,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  });
  res.send(body);
}

export function registerUi(app: express.Express, deps: UiDeps): void {
  const now = deps.now ?? Date.now;
  const admin = (req: Request, _res: Response, next: NextFunction) =>
    next(deps.isAdmin(req.headers.authorization) ? undefined : forbidden('This endpoint needs a gateway admin key.', 'admin_key_required'));
  app.get('/ui', (_req, res) => send(res, 'text/html; charset=utf-8', PAGE_HTML));
  app.get('/ui/app.js', (_req, res) => send(res, 'text/javascript; charset=utf-8', APP_JS));
  app.get('/ui/app.css', (_req, res) => send(res, 'text/css; charset=utf-8', APP_CSS));
  app.get('/ui/api/budgets', admin, (_req, res) => {
    res.set('cache-control', 'no-store');
    res.json(budgetTable(deps.config, now()));
  });
}
