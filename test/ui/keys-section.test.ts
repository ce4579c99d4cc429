/**
 * The operator page's keys section, create and revoke, in chromium, against a stand-in on 127.0.0.1
 * for the gateway's runtime keys API (issue 24, built in parallel), following that API's contract: GET /v1/gateway/keys -> {data: [...]}, POST {name, team, project?,
 * expires_at?, models?, budget?} -> 201 {id, key, ...} (the key shown once), DELETE /v1/gateway/keys/{id}.
 * The stand-in serves the page with the same registerUi() the gateway calls.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Browser, Page } from 'playwright-core';
import { parseConfig } from '../../service/config/schema';
import { registerUi } from '../../service/ui/register';
import { launchChromium } from './browser';

// Browser globals inside page.evaluate callbacks (the project compiles without the DOM lib).
declare const document: any;

const ADMIN = 'sk-gw-ui-keys-admin-0123456789';

interface StandIn {
  url: string;
  created: Array<Record<string, unknown>>;
  deleted: string[];
  close(): Promise<void>;
}

async function startStandIn(): Promise<StandIn> {
  const config = parseConfig({
    auth: { mode: 'none' },
    providers: [{ name: 'p', base_url: 'http://127.0.0.1:9/v1', api_key: 'sk-p', models: [{ name: 'm', input_per_million: 1, output_per_million: 2 }] }],
  });
  const keys: Array<Record<string, unknown>> = [{ id: 'cfg-1', name: 'from-config', team: 'web', project: 'default', source: 'config', created_at: null, revoked: false }];
  const state = { created: [] as Array<Record<string, unknown>>, deleted: [] as string[] };
  const app = express();
  app.use(express.json());
  const isAdmin = (h: string | undefined) => h === `Bearer ${ADMIN}`;
  app.use('/v1/gateway', (req, res, next) =>
    isAdmin(req.headers.authorization) ? next() : res.status(403).json({ error: { message: 'admin key required', type: 'permission_error', code: 'admin_key_required' } }),
  );
  registerUi(app, { config, isAdmin });
  app.get('/v1/gateway/providers', (_req, res) => res.json({ object: 'list', strategy: 'cost-optimal', redis: 'not configured', data: [] }));
  app.get('/v1/gateway/spend', (_req, res) => {
    const zero = {
      requests: 0,
      cached_requests: 0,
      estimated_requests: 0,
      unpriced_requests: 0,
      prompt_tokens: 0,
      completion_tokens: 0,
      cost_usd: 0,
      list_cost_usd: 0,
      savings_usd: 0,
      routing_savings_usd: 0,
      cache_savings_usd: 0,
    };
    res.json({ from: '2026-12-01', to: '2026-12-01', filters: {}, totals: zero, by_team: [], by_project: [], by_provider: [], by_model: [], by_day: [] });
  });
  app.get('/v1/gateway/keys', (_req, res) => res.json({ object: 'list', data: keys }));
  app.post('/v1/gateway/keys', (req, res) => {
    state.created.push(req.body);
    const row = {
      id: randomUUID(),
      name: req.body.name,
      team: req.body.team,
      project: req.body.project ?? 'default',
      source: 'api',
      created_at: new Date().toISOString(),
      expires_at: req.body.expires_at ?? null,
      revoked: false,
    };
    keys.push(row);
    res.status(201).json({ ...row, key: `sk-gw-${randomUUID()}` });
  });
  app.delete('/v1/gateway/keys/:id', (req, res) => {
    state.deleted.push(req.params.id);
    const k = keys.find((x) => x.id === req.params.id);
    if (!k) return void res.status(404).json({ error: { message: 'no such key', type: 'not_found_error', code: 'key_not_found' } });
    k.revoked = true;
    res.json(k);
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, ...state, close: () => new Promise((r) => server.close(() => r()) as unknown as void) };
}

describe('operator page: keys section (create, shown once, revoke)', function () {
  this.timeout(60_000);
  let standIn: StandIn;
  let browser: Browser | undefined;
  let page: Page;

  before(async function () {
    const launched = await launchChromium();
    if (!launched.browser) {
      console.log(`      skipped: ${launched.reason}`);
      this.skip();
    }
    browser = launched.browser;
    standIn = await startStandIn();
    page = await browser!.newPage();
    page.on('dialog', (d) => void d.accept());
  });
  after(async () => {
    await browser?.close();
    await standIn?.close();
  });

  it('creates a key with a budget and models, shows it once, lists it, and revokes it', async () => {
    await page.goto(`${standIn.url}/ui`);
    await page.fill('#admin-key', ADMIN);
    await page.click('#key-form button[type=submit]');
    await page.waitForSelector('body[data-loaded=true]');
    assert.equal(await page.isVisible('#key-create'), true);
    assert.equal(await page.$$eval('#table-keys button[data-revoke]', (b) => b.length), 0, 'config keys are read-only');

    await page.fill('#k-name', 'search-bot');
    await page.fill('#k-team', 'search');
    await page.fill('#k-models', 'gpt-4o-mini, gpt-4o');
    await page.fill('#k-daily', '50');
    await page.fill('#k-expires', '2027-01-31');
    await page.click('#key-create button[type=submit]');
    await page.waitForSelector('#new-key:not([hidden])');
    assert.deepEqual(standIn.created, [{ name: 'search-bot', team: 'search', models: ['gpt-4o-mini', 'gpt-4o'], budget: { daily_usd: 50 }, expires_at: '2027-01-31T00:00:00Z' }]);
    const shown = await page.textContent('#new-key-value');
    assert.match(shown ?? '', /^sk-gw-/);
    await page.waitForSelector('#table-keys button[data-revoke]');
    await page.click('#new-key-done');
    assert.equal(await page.textContent('#new-key-value'), '', 'Done removes the key from the page');
    assert.deepEqual(await page.evaluate(() => Object.keys(sessionStorage)), ['aigw-admin-key'], 'the new key is not stored anywhere');
    assert.equal(await page.evaluate(() => Object.keys(localStorage).length), 0);

    await page.click('#table-keys button[data-revoke]');
    await page.waitForFunction(() => document.querySelectorAll('#table-keys button[data-revoke]').length === 0);
    assert.equal(standIn.deleted.length, 1);
    assert.match((await page.textContent('#table-keys')) ?? '', /search-bot[\s\S]*revoked/);
  });
});
