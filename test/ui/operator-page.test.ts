/**
 * The operator page (GET /ui) in a real browser: Debian's chromium driven by playwright-core, against
 * a real gateway on 127.0.0.1 that has served requests for two teams. The page asks for the admin key,
 * loads spend, budgets, provider health and keys from the admin JSON endpoints, and draws the charts;
 * the test checks the SVG bars have a size, counts the bar colour's pixels in a screenshot, and keeps
 * the screenshot (its path is printed) for a person to look at. Skips, saying why, without a browser.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Script } from 'node:vm';
import OpenAI from 'openai';
import type { Browser, Page } from 'playwright-core';
import { hashKey } from '../../service/tenancy/keys';
import { APP_JS } from '../../service/ui/script';
import { UI_CSP } from '../../service/ui/register';
import { FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream';
import { provider, startTestGateway, TestGateway, waitForSpend } from '../helpers/gateway';
import { launchChromium } from './browser';

// Browser globals inside page.evaluate callbacks (the project compiles without the DOM lib).
declare const document: any, Image: any;

const WEB_KEY = 'sk-gw-ui-web-client';
const DATA_KEY = 'sk-gw-ui-data-client';
const ADMIN = 'sk-gw-ui-admin-key-0123456789';

/** Pixels of the bar colour (#3567d6, see service/ui/style.ts) in a PNG, counted by the browser on a canvas. */
async function barPixels(page: Page, png: Buffer): Promise<{ bar: number; total: number }> {
  return page.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width;
    c.height = img.height;
    const g = c.getContext('2d')!;
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let bar = 0;
    for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 0x35) < 6 && Math.abs(d[i + 1] - 0x67) < 6 && Math.abs(d[i + 2] - 0xd6) < 6) bar++;
    return { bar, total: d.length / 4 };
  }, png.toString('base64'));
}

describe('operator page (/ui)', function () {
  this.timeout(60_000);
  let up: FakeUpstream;
  let gw: TestGateway;

  before(async () => {
    up = await startFakeUpstream('p');
    gw = await startTestGateway({
      auth: {
        keys: [
          { hash: hashKey(WEB_KEY), name: 'web-app', team: 'web', project: 'site' },
          { hash: hashKey(DATA_KEY), name: 'etl', team: 'data', project: 'etl' },
        ],
        admin_key_hashes: [hashKey(ADMIN)],
      },
      teams: [
        { name: 'web', budget: { daily_usd: 1, monthly_usd: 20 } },
        // One request is admitted on an unspent budget and spends more than this: "data" ends over its day.
        { name: 'data', budget: { daily_usd: 0.000001 } },
      ],
      providers: [
        provider('p', up.url, [
          // The fake answers 5 output tokens: what a request without max_tokens holds in the budget.
          { name: 'small', input_per_million: 100, output_per_million: 200, reserve_output_tokens: 5 },
          { name: 'large', input_per_million: 1000, output_per_million: 3000, reserve_output_tokens: 5 },
        ]),
      ],
    });
    const send = (key: string, model: string, n: number) => {
      const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key, maxRetries: 0 });
      return Promise.all(Array.from({ length: n }, () => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hello there' }] })));
    };
    await send(WEB_KEY, 'small', 3);
    await send(WEB_KEY, 'large', 2);
    await send(DATA_KEY, 'large', 1);
    await waitForSpend(gw.url, ADMIN, 'web', 5);
    await waitForSpend(gw.url, ADMIN, 'data', 1);
  });
  after(async () => {
    await gw?.shutdown();
    await up?.close();
  });

  it('serves the page without a key, with a strict CSP and no inline script or style', async () => {
    const res = await fetch(`${gw.url}/ui`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-security-policy'), UI_CSP);
    assert.match(UI_CSP, /default-src 'none'/);
    assert.match(UI_CSP, /script-src 'self'(;|$)/);
    assert.doesNotMatch(UI_CSP, /unsafe-inline|unsafe-eval|\*/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const html = await res.text();
    assert.doesNotMatch(html, /<script>|<style|\sstyle=|\son[a-z]+=/i, 'no inline script, style or event handler');
    for (const asset of ['/ui/app.js', '/ui/app.css']) {
      const a = await fetch(`${gw.url}${asset}`);
      assert.equal(a.status, 200, asset);
      assert.equal(a.headers.get('content-security-policy'), UI_CSP);
    }
    assert.doesNotThrow(() => new Script(APP_JS), 'app.js parses');
    assert.doesNotMatch(APP_JS, /innerHTML|eval\(|new Function/);
  });

  it('GET /ui/api/budgets needs the admin key (OpenAI-shaped 403) and lists the teams with budgets', async () => {
    for (const authorization of [undefined, `Bearer ${WEB_KEY}`]) {
      const res = await fetch(`${gw.url}/ui/api/budgets`, { headers: authorization ? { authorization } : {} });
      assert.equal(res.status, 403);
      const body = (await res.json()) as { error: { message: string; type: string; code: string } };
      assert.equal(body.error.code, 'admin_key_required');
      assert.equal(body.error.type, 'permission_error');
    }
    const ok = await fetch(`${gw.url}/ui/api/budgets`, { headers: { authorization: `Bearer ${ADMIN}` } });
    const body = (await ok.json()) as { today: string; data: Array<{ team: string; daily_usd: number | null; monthly_usd: number | null }> };
    assert.equal(body.today, new Date().toISOString().slice(0, 10));
    assert.deepEqual(
      body.data.map((t) => [t.team, t.daily_usd, t.monthly_usd]),
      [
        ['web', 1, 20],
        ['data', 0.000001, null],
      ],
    );
  });

  describe('in chromium', () => {
    let browser: Browser | undefined;
    let page: Page;
    const problems: string[] = [];
    const urls: string[] = [];

    before(async function () {
      const launched = await launchChromium();
      if (!launched.browser) {
        console.log(`      skipped: ${launched.reason}`);
        this.skip();
      }
      browser = launched.browser;
      page = await browser!.newPage({ viewport: { width: 1280, height: 1500 } });
      page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
      page.on('pageerror', (e) => problems.push(e.message));
      page.on('request', (r) => urls.push(r.url()));
      page.on('dialog', (d) => void d.accept());
    });
    after(async () => {
      await browser?.close();
    });

    it('a refused key says so and loads nothing', async () => {
      await page.goto(`${gw.url}/ui`);
      await page.fill('#admin-key', WEB_KEY);
      await page.click('#key-form button[type=submit]');
      await page.waitForFunction(() => document.getElementById('status')!.className === 'error');
      assert.match((await page.textContent('#status')) ?? '', /refused this key/);
      await page.click('#forget-key');
    });

    it('with the admin key: spend charts and tables, budgets, provider health, and the keys section without a store', async () => {
      await page.goto(`${gw.url}/ui`);
      await page.fill('#admin-key', ADMIN);
      await page.click('#key-form button[type=submit]');
      await page.waitForSelector('body[data-loaded=true]');
      assert.equal(await page.evaluate(() => sessionStorage.getItem('aigw-admin-key')), ADMIN);
      assert.equal(await page.inputValue('#admin-key'), '', 'the field is cleared once the key is stored');

      const day = await page.$$eval('#chart-day rect.bar', (rs) => rs.map((r) => ({ h: r.getBoundingClientRect().height, w: r.getBoundingClientRect().width })));
      assert.ok(day.length >= 1, 'one bar per day of the month so far');
      assert.ok(
        day.some((b) => b.h > 10 && b.w > 0),
        `today's bar has a size: ${JSON.stringify(day)}`,
      );
      const teams = await page.$$eval('#chart-team rect.bar', (rs) => rs.map((r) => r.getBoundingClientRect().width));
      assert.equal(teams.length, 2);
      assert.ok(
        teams.every((w) => w > 0),
        `team bars: ${teams}`,
      );
      assert.match((await page.textContent('#chart-team')) ?? '', /web[\s\S]*data/, 'largest first');
      const models = await page.$$eval('#table-model tbody tr td:first-child', (tds) => tds.map((t) => t.textContent));
      assert.deepEqual(models.sort(), ['large', 'small']);
      const projects = await page.$$eval('#table-project tbody tr', (trs) => trs.map((t) => [...t.querySelectorAll('td')].slice(0, 3).map((c) => c.textContent)));
      assert.deepEqual(projects, [
        ['data', 'etl', '1'],
        ['web', 'site', '5'],
      ]);

      const budgets = await page.$$eval('#table-budgets tbody tr', (trs) => trs.map((t) => [...t.querySelectorAll('td')].map((c) => c.textContent ?? '')));
      assert.equal(budgets.length, 3, 'web: today and month; data: today');
      const dataToday = budgets.find((b) => b[0] === 'data' && b[1].startsWith('today'))!;
      assert.ok(Number(dataToday[4].replace('%', '')) > 100, `data spent more than its day: ${dataToday}`);
      const webToday = budgets.find((b) => b[0] === 'web' && b[1].startsWith('today'))!;
      assert.ok(Number(webToday[4].replace('%', '')) > 0 && Number(webToday[4].replace('%', '')) < 100, `web used part of its day: ${webToday}`);
      assert.equal(await page.$$eval('#table-budgets rect.over', (rs) => rs.length), 1, 'the over-budget meter is red');

      const health = await page.$$eval('#table-providers tbody tr', (trs) => trs.map((t) => [...t.querySelectorAll('td')].map((c) => c.textContent ?? '')));
      assert.deepEqual(
        health.map((h) => [h[0], h[1], h[2]]),
        [
          ['p (openai)', 'small', 'closed'],
          ['p (openai)', 'large', 'closed'],
        ],
      );
      assert.ok(
        health.every((h) => Number(h[3]) >= 0 && h[5] === '0.0%'),
        JSON.stringify(health),
      );
      // With the key store (issue 24) the section lists the config's keys; without it, it says what is needed.
      const keysApi = await fetch(`${gw.url}/v1/gateway/keys`, { headers: { authorization: `Bearer ${ADMIN}` } });
      if (keysApi.status === 200) {
        assert.match((await page.textContent('#table-keys')) ?? '', /web-app[\s\S]*etl|etl[\s\S]*web-app/);
        assert.equal(await page.isVisible('#key-create'), true);
      } else {
        assert.match((await page.textContent('#keys-note')) ?? '', /Runtime keys need the key store/);
        assert.equal(await page.isHidden('#key-create'), true);
      }

      const file = join(mkdtempSync(join(tmpdir(), 'aigw-ui-')), 'operator-page.png');
      const png = await page.screenshot({ path: file, fullPage: true });
      console.log(`      screenshot: ${file}`);
      const chart = await barPixels(page, await page.locator('#chart-day').screenshot());
      assert.ok(chart.bar > 200 && chart.bar < chart.total, `the day chart has bar-coloured pixels: ${chart.bar} of ${chart.total}`);
      assert.ok((await barPixels(page, png)).bar > chart.bar, 'the team and model charts add more');

      // HTTP errors the page shows on purpose (the refused key, the keys API) are logged as "Failed to load resource".
      assert.deepEqual(
        problems.filter((p) => !p.startsWith('Failed to load resource')),
        [],
        'no script error or CSP violation',
      );
      assert.ok(urls.length > 5 && urls.every((u) => !u.includes(ADMIN)), 'the admin key never appears in a URL');
    });
  });
});
