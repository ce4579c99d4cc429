/**
 * The admin API on the store (docs/keys.md): keys, teams, audit log and the ledger's spend
 * report. Every route needs an admin key; every change is written with its audit row.
 *
 *   POST   /v1/gateway/keys              create (the key is in this answer only)
 *   GET    /v1/gateway/keys[?team=]      list (config keys too, read-only; never a secret)
 *   DELETE /v1/gateway/keys/:id          revoke
 *   POST   /v1/gateway/keys/:id/rotate   a new key; the old one works for grace_seconds more
 *   POST   /v1/gateway/teams, GET /v1/gateway/teams, PATCH /v1/gateway/teams/:name
 *   GET    /v1/gateway/audit[?from=&to=&limit=]
 *   GET    /v1/gateway/spend[?from=&to=&group_by=&team=&key=...&format=csv]
 */
import express, { NextFunction, Request, Response, Router } from 'express';
import type { GatewayConfig } from '../config/schema';
import { badRequest, forbidden, GatewayError, notFound, serviceUnavailable } from '../core/errors';
import * as dir from '../store/directory';
import type { Store } from '../store/store';
import { ledgerReport, parseLedgerQuery, toCsv } from '../store/spend-report';
import { createKeyBody, createTeamBody, parseBody, patchTeamBody, rotateKeyBody } from './schemas';
import { configKeyView, configTeamView, keyView, teamView } from './views';
import { randomBytes } from 'node:crypto';

export interface AdminDeps {
  config: GatewayConfig;
  store: Store;
  /** "admin:<hash prefix>" for an admin key, undefined otherwise. */
  adminId: (authorization: string | undefined) => string | undefined;
  now: () => number;
  logger: { warn(obj: object, msg: string): void };
}

type Handler = (req: Request, res: Response, actor: string) => Promise<void>;

const conflict = (message: string, code: string) => new GatewayError(409, 'invalid_request_error', code, message);

/** Admin check, then the handler; a database error becomes a 503 (the store is unreachable), never a stack trace. */
function route(deps: AdminDeps, fn: Handler) {
  return (req: Request, res: Response, next: NextFunction) => {
    const actor = deps.adminId(req.headers.authorization);
    if (!actor) return next(forbidden('This endpoint needs a gateway admin key.', 'admin_key_required'));
    fn(req, res, actor).catch((err: unknown) => {
      if (err instanceof GatewayError) return next(err);
      deps.logger.warn({ reason: (err as Error)?.message, path: req.path }, 'admin call failed on the store');
      next(serviceUnavailable('The key store (PostgreSQL) did not answer. Retry shortly.', 'store_unavailable'));
    });
  };
}

function servedModels(config: GatewayConfig): Set<string> {
  return new Set([...Object.keys(config.models), ...config.providers.flatMap((p) => p.models.map((m) => m.name))]);
}

function keyRoutes(r: Router, deps: AdminDeps): void {
  const { config, store, now } = deps;
  const models = servedModels(config);
  const configTeams = new Set(config.teams.map((t) => t.name));
  r.post(
    '/v1/gateway/keys',
    route(deps, async (req, res, actor) => {
      const body = parseBody(createKeyBody, req.body);
      const teamKnown = configTeams.has(body.team) || store.registry.team(body.team) !== undefined;
      if (!teamKnown && (configTeams.size > 0 || store.registry.hasTeams()))
        throw badRequest(`Unknown team "${body.team}". Create it first (POST /v1/gateway/teams) or use a team from the config.`, 'unknown_team', 'team');
      const unknown = body.models?.find((m) => !models.has(m));
      if (unknown) throw badRequest(`The model "${unknown.slice(0, 256)}" is not served by this gateway.`, 'model_not_found', 'models');
      const name = body.name ?? `${body.team.slice(0, 50)}-${randomBytes(4).toString('hex')}`;
      if (config.auth.keys.some((k) => k.name === name)) throw conflict(`A key named "${name}" is defined in the config; choose another name.`, 'key_name_taken');
      const expires = body.expires_at ? new Date(body.expires_at) : undefined;
      if (expires && expires.getTime() <= now()) throw badRequest('"expires_at" must be in the future.', 'invalid_expiry', 'expires_at');
      const created = await dir.createKey(store.db, { ...body, name, expires_at: expires }, actor);
      if (!created) throw conflict(`An active key is already named "${name}" (limits are counted per name); choose another name, or rotate that key.`, 'key_name_taken');
      const { row, key } = created;
      await store.registry.refresh(true);
      res.status(201).json({ ...keyView(row, now()), key });
    }),
  );
  r.get(
    '/v1/gateway/keys',
    route(deps, async (req, res) => {
      const team = typeof req.query.team === 'string' && req.query.team !== '' ? req.query.team : undefined;
      const fromConfig = config.auth.keys.filter((k) => team === undefined || k.team === team).map(configKeyView);
      const rows = await dir.listKeys(store.db, team);
      res.json({ object: 'list', data: [...fromConfig, ...rows.map((k) => keyView(k, now()))] });
    }),
  );
  r.delete(
    '/v1/gateway/keys/:id',
    route(deps, async (req, res, actor) => {
      const id = String(req.params.id);
      if (id.startsWith('config:')) throw conflict('This key is defined in the config: remove it there (and roll out) to revoke it.', 'read_only');
      const row = await dir.revokeKey(store.db, id, actor);
      if (!row) throw notFound(`No key with id "${id.slice(0, 64)}".`, 'key_not_found');
      await store.registry.refresh(true);
      res.json(keyView(row, now()));
    }),
  );
  r.post(
    '/v1/gateway/keys/:id/rotate',
    route(deps, async (req, res, actor) => {
      const id = String(req.params.id);
      if (id.startsWith('config:')) throw conflict('This key is defined in the config: rotate it there (npm run keygen, then roll out).', 'read_only');
      const body = parseBody(rotateKeyBody, req.body);
      const grace = body.grace_seconds ?? store.settings.rotate_grace_seconds;
      const out = await dir.rotateKey(store.db, id, grace, actor);
      if (!out) throw notFound(`No active key with id "${id.slice(0, 64)}".`, 'key_not_found');
      await store.registry.refresh(true);
      res
        .status(201)
        .json({ ...keyView(out.row, now()), key: out.key, replaced: { id: out.old.id, expires_at: out.old.expires_at ? new Date(out.old.expires_at).toISOString() : null, grace_seconds: grace } });
    }),
  );
}

function teamRoutes(r: Router, deps: AdminDeps): void {
  const { config, store } = deps;
  const configTeams = new Map(config.teams.map((t) => [t.name, t]));
  r.post(
    '/v1/gateway/teams',
    route(deps, async (req, res, actor) => {
      const body = parseBody(createTeamBody, req.body);
      if (configTeams.has(body.name)) throw conflict(`Team "${body.name}" is defined in the config.`, 'team_exists');
      const row = await dir.createTeam(store.db, body, actor);
      if (!row) throw conflict(`Team "${body.name}" already exists.`, 'team_exists');
      await store.registry.refresh(true);
      res.status(201).json(teamView(row));
    }),
  );
  r.get(
    '/v1/gateway/teams',
    route(deps, async (_req, res) => {
      const rows = await dir.listTeams(store.db);
      res.json({ object: 'list', data: [...config.teams.map(configTeamView), ...rows.map(teamView)] });
    }),
  );
  r.patch(
    '/v1/gateway/teams/:name',
    route(deps, async (req, res, actor) => {
      const name = String(req.params.name);
      if (configTeams.has(name)) throw conflict(`Team "${name}" is defined in the config: change it there.`, 'read_only');
      const body = parseBody(patchTeamBody, req.body);
      const row = await dir.patchTeam(store.db, name, body, actor);
      if (!row) throw notFound(`No team "${name.slice(0, 64)}".`, 'team_not_found');
      await store.registry.refresh(true);
      res.json(teamView(row));
    }),
  );
}

function dateParam(v: unknown, param: string): Date | undefined {
  if (v === undefined || v === '') return undefined;
  const t = typeof v === 'string' ? Date.parse(v) : NaN;
  if (Number.isNaN(t)) throw badRequest(`"${param}" must be a date or time (ISO 8601).`, 'invalid_date', param);
  return new Date(t);
}

function reportRoutes(r: Router, deps: AdminDeps): void {
  const { store, now } = deps;
  r.get(
    '/v1/gateway/audit',
    route(deps, async (req, res) => {
      const limit = req.query.limit === undefined ? 100 : Number(req.query.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw badRequest('"limit" must be an integer from 1 to 1000.', 'invalid_parameter', 'limit');
      const rows = await dir.listAudit(store.db, { from: dateParam(req.query.from, 'from'), to: dateParam(req.query.to, 'to'), limit });
      res.json({
        object: 'list',
        data: rows.map((a) => ({ object: 'gateway.audit_event', id: a.id, at: new Date(a.at).toISOString(), actor: a.actor, action: a.action, target: a.target, details: a.details })),
      });
    }),
  );
  r.get(
    '/v1/gateway/spend',
    route(deps, async (req, res) => {
      const q = parseLedgerQuery(req.query as Record<string, unknown>, now());
      await store.ledger.flush(); // this replica's own rows first, so the report includes what it served
      const report = await ledgerReport(store.db, q);
      const csv = req.query.format === 'csv' || (req.query.format === undefined && req.accepts(['application/json', 'text/csv']) === 'text/csv');
      if (csv) {
        res.type('text/csv').setHeader('content-disposition', `attachment; filename="spend-${q.from}-${q.to}.csv"`);
        res.send(toCsv(q.groupBy, report.data));
        return;
      }
      res.json({ object: 'spend_report', source: 'ledger', from: q.from, to: q.to, group_by: q.groupBy, filters: q.filters, totals: report.totals, data: report.data });
    }),
  );
}

/** The admin routes, with their own JSON body parser (64 KB; a malformed body is a 400, a larger one a 413). */
export function adminRouter(deps: AdminDeps): Router {
  const r = express.Router();
  // Only admins get their body read (an unauthenticated caller never costs a parse); every /v1/gateway route is admin-only.
  const admin = (req: Request, _res: Response, next: NextFunction) =>
    next(deps.adminId(req.headers.authorization) ? undefined : forbidden('This endpoint needs a gateway admin key.', 'admin_key_required'));
  r.use('/v1/gateway', admin, express.json({ limit: '64kb', type: () => true }), (err: unknown, _req: Request, _res: Response, next: NextFunction) => {
    const type = (err as { type?: string }).type;
    if (typeof type !== 'string' || !type.startsWith('entity.')) return next(err); // not the body parser's
    if (type === 'entity.too.large') return next(new GatewayError(413, 'invalid_request_error', 'request_too_large', 'The request body is larger than 64 KB.'));
    next(badRequest('The request body is not valid JSON.', 'invalid_json'));
  });
  keyRoutes(r, deps);
  teamRoutes(r, deps);
  reportRoutes(r, deps);
  return r;
}
