/**
 * The operator page's script (served as /ui/app.js). Hand-written browser JavaScript, kept as a
 * string so the compiled service carries it without a bundler or an asset copy step. It builds every
 * node with createElement/textContent (never innerHTML: names come from config and clients), and the
 * charts as SVG elements with attributes only (the CSP allows no inline style).
 */
export const APP_JS = String.raw`(function () {
  'use strict';
  var STORE = 'aigw-admin-key';
  var SVG = 'http://www.w3.org/2000/svg';
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  function svg(tag, attrs, text) {
    var n = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { n.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) n.textContent = String(text);
    return n;
  }
  function money(n) { return '$' + Number(n || 0).toFixed(Math.abs(n) < 1 && n !== 0 ? 4 : 2); }
  function int(n) { return Number(n || 0).toLocaleString('en-US'); }
  function setStatus(text, error) { var s = $('status'); s.textContent = text; s.className = error ? 'error' : ''; }
  function key() { return sessionStorage.getItem(STORE) || ''; }

  async function api(path, init) {
    init = init || {};
    var headers = { authorization: 'Bearer ' + key() };
    if (init.body) headers['content-type'] = 'application/json';
    var res = await fetch(path, { method: init.method || 'GET', headers: headers, body: init.body, cache: 'no-store', credentials: 'omit' });
    var body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    return { status: res.status, body: body };
  }
  function errorText(r) { return (r.body && r.body.error && r.body.error.message) || ('HTTP ' + r.status); }

  function table(container, columns, rows, empty) {
    var box = $(container);
    box.replaceChildren();
    if (!rows.length) { box.appendChild(el('p', { class: 'note' }, empty || 'Nothing yet.')); return; }
    var t = el('table'), head = el('tr');
    columns.forEach(function (c) { head.appendChild(el('th', c.num ? { class: 'num' } : {}, c.label)); });
    t.appendChild(el('thead')).appendChild(head);
    var tbody = t.appendChild(el('tbody'));
    rows.forEach(function (r) {
      var tr = tbody.appendChild(el('tr'));
      columns.forEach(function (c) {
        var v = c.get(r), td = el('td', c.num ? { class: 'num' } : {});
        if (v instanceof Node) td.appendChild(v); else td.textContent = v === null || v === undefined ? '-' : String(v);
        tr.appendChild(td);
      });
    });
    box.appendChild(t);
  }

  /** Vertical bars, one per row (the days of the report). */
  function columnChart(container, rows, label, value) {
    var box = $(container), W = 720, H = 200, top = 16, bottom = 24, left = 8;
    box.replaceChildren();
    var max = Math.max.apply(null, rows.map(value).concat([0]));
    var s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-label': 'cost by day' });
    if (!rows.length || max <= 0) s.appendChild(svg('text', { x: 10, y: H / 2, class: 'empty' }, 'No spend in this range.'));
    var step = (W - left * 2) / Math.max(rows.length, 1), bw = Math.max(1, step * 0.75);
    rows.forEach(function (r, i) {
      var h = max > 0 ? (value(r) / max) * (H - top - bottom) : 0;
      var rect = svg('rect', { class: 'bar', x: left + i * step, y: H - bottom - h, width: bw, height: h, 'data-value': value(r) });
      rect.appendChild(svg('title', {}, label(r) + ': ' + money(value(r))));
      s.appendChild(rect);
    });
    if (rows.length) {
      s.appendChild(svg('text', { x: left, y: H - 6 }, label(rows[0])));
      s.appendChild(svg('text', { x: W - left, y: H - 6, 'text-anchor': 'end' }, label(rows[rows.length - 1])));
      s.appendChild(svg('text', { x: left, y: 11 }, 'max ' + money(max)));
    }
    box.appendChild(s);
  }

  /** Horizontal bars, one per row, largest first (teams, models). */
  function barChart(container, rows, label, value) {
    var box = $(container), W = 420, row = 22, lw = 130;
    box.replaceChildren();
    rows = rows.slice().sort(function (a, b) { return value(b) - value(a); }).slice(0, 12);
    var max = Math.max.apply(null, rows.map(value).concat([0]));
    var H = Math.max(1, rows.length) * row + 4;
    var s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img' });
    if (!rows.length) s.appendChild(svg('text', { x: 4, y: 15, class: 'empty' }, 'No spend in this range.'));
    rows.forEach(function (r, i) {
      var w = max > 0 ? (value(r) / max) * (W - lw - 70) : 0, y = i * row + 2;
      s.appendChild(svg('text', { x: lw - 6, y: y + 14, 'text-anchor': 'end' }, String(label(r)).slice(0, 20)));
      var rect = svg('rect', { class: 'bar', x: lw, y: y + 3, width: w, height: row - 8, 'data-value': value(r) });
      rect.appendChild(svg('title', {}, label(r) + ': ' + money(value(r))));
      s.appendChild(rect);
      s.appendChild(svg('text', { x: lw + w + 4, y: y + 14 }, money(value(r))));
    });
    box.appendChild(s);
  }

  var cost = function (r) { return r.cost_usd; };

  /** Every day of the report, with the days that had no spend as zero (the report lists only days with spend). */
  function allDays(report) {
    var byDate = {};
    report.by_day.forEach(function (d) { byDate[d.date] = d; });
    var out = [], t = Date.parse(report.from + 'T00:00:00Z'), end = Date.parse(report.to + 'T00:00:00Z');
    for (; t <= end && out.length < 400; t += 86400000) {
      var date = new Date(t).toISOString().slice(0, 10);
      out.push(byDate[date] || { date: date, cost_usd: 0 });
    }
    return out;
  }
  var figureCols = [
    { label: 'Requests', num: true, get: function (r) { return int(r.requests); } },
    { label: 'Tokens in', num: true, get: function (r) { return int(r.prompt_tokens); } },
    { label: 'Tokens out', num: true, get: function (r) { return int(r.completion_tokens); } },
    { label: 'Cost', num: true, get: function (r) { return money(r.cost_usd); } },
    { label: 'Saved', num: true, get: function (r) { return money(r.savings_usd); } },
  ];

  async function loadSpend() {
    var q = new URLSearchParams();
    ['from', 'to', 'team', 'project'].forEach(function (id) { var v = $(id).value.trim(); if (v) q.set(id, v); });
    var r = await api('/v1/gateway/spend' + (q.toString() ? '?' + q : ''));
    if (r.status !== 200) { $('spend-totals').textContent = 'Spend: ' + errorText(r); return false; }
    var s = r.body, t = s.totals;
    $('spend-totals').textContent = s.from + ' to ' + s.to + ': ' + money(t.cost_usd) + ' over ' + int(t.requests) + ' requests (' +
      int(t.prompt_tokens) + ' tokens in, ' + int(t.completion_tokens) + ' out; ' + money(t.savings_usd) + ' saved against list prices)';
    columnChart('chart-day', allDays(s), function (d) { return d.date; }, cost);
    barChart('chart-team', s.by_team, function (d) { return d.team; }, cost);
    barChart('chart-model', s.by_model, function (d) { return d.model; }, cost);
    table('table-team', [{ label: 'Team', get: function (r) { return r.team; } }].concat(figureCols), s.by_team);
    table('table-model', [{ label: 'Model', get: function (r) { return r.model; } }].concat(figureCols), s.by_model);
    table('table-project', [{ label: 'Team', get: function (r) { return r.team; } }, { label: 'Project', get: function (r) { return r.project; } }].concat(figureCols), s.by_project);
    return true;
  }

  function meter(used, limit, threshold) {
    var f = limit ? used / limit : 0, W = 120;
    var s = svg('svg', { width: W, height: 12, viewBox: '0 0 ' + W + ' 12', class: 'meter' });
    s.appendChild(svg('rect', { class: 'track', x: 0, y: 0, width: W, height: 12 }));
    s.appendChild(svg('rect', { class: f >= 1 ? 'over' : f >= threshold ? 'warn' : 'ok', x: 0, y: 0, width: Math.min(1, f) * W, height: 12 }));
    var span = el('span');
    span.appendChild(s);
    span.appendChild(document.createTextNode(' ' + (f * 100).toFixed(1) + '%'));
    return span;
  }

  async function loadBudgets() {
    var b = await api('/ui/api/budgets');
    if (b.status !== 200) { table('table-budgets', [], [], 'Budgets: ' + errorText(b)); return; }
    var cfg = b.body, rows = [];
    var month = await api('/v1/gateway/spend?from=' + cfg.month + '-01&to=' + cfg.today);
    var day = await api('/v1/gateway/spend?from=' + cfg.today + '&to=' + cfg.today);
    var spent = function (r, team) { var row = (r.body && r.body.by_team || []).find(function (x) { return x.team === team; }); return row ? row.cost_usd : 0; };
    cfg.data.forEach(function (t) {
      if (t.daily_usd !== null) rows.push({ team: t.team, period: 'today (' + cfg.today + ')', used: spent(day, t.team), limit: t.daily_usd, th: t.alert_threshold });
      if (t.monthly_usd !== null) rows.push({ team: t.team, period: 'month (' + cfg.month + ')', used: spent(month, t.team), limit: t.monthly_usd, th: t.alert_threshold });
    });
    table('table-budgets', [
      { label: 'Team', get: function (r) { return r.team; } },
      { label: 'Period', get: function (r) { return r.period; } },
      { label: 'Spent', num: true, get: function (r) { return money(r.used); } },
      { label: 'Budget', num: true, get: function (r) { return money(r.limit); } },
      { label: 'Used', get: function (r) { return meter(r.used, r.limit, r.th); } },
    ], rows, 'No team has a budget in the config.');
  }

  async function loadProviders() {
    var r = await api('/v1/gateway/providers');
    if (r.status !== 200) { $('providers-summary').textContent = 'Providers: ' + errorText(r); return; }
    $('providers-summary').textContent = 'Routing strategy: ' + r.body.strategy + '; Redis: ' + r.body.redis;
    var rows = [];
    r.body.data.forEach(function (p) { p.models.forEach(function (m) { rows.push({ p: p, m: m }); }); });
    table('table-providers', [
      { label: 'Provider', get: function (x) { return x.p.name + ' (' + x.p.type + ')'; } },
      { label: 'Model', get: function (x) { return x.m.model; } },
      { label: 'Circuit', get: function (x) { return el('span', { class: 'badge ' + x.m.circuit }, x.m.circuit + (x.m.retry_in_ms ? ' (retry in ' + Math.ceil(x.m.retry_in_ms / 1000) + ' s)' : '')); } },
      { label: 'First byte ms', num: true, get: function (x) { return x.m.latency_ms.ttfb; } },
      { label: 'Total ms', num: true, get: function (x) { return x.m.latency_ms.total; } },
      { label: 'Error rate', num: true, get: function (x) { return (x.m.error_rate * 100).toFixed(1) + '%'; } },
      { label: 'Samples', num: true, get: function (x) { return int(x.m.samples); } },
    ], rows, 'No providers.');
  }

  function revokeButton(k) {
    var b = el('button', { type: 'button', 'data-revoke': k.id }, 'Revoke');
    b.addEventListener('click', async function () {
      if (!window.confirm('Revoke key ' + (k.name || k.id) + '? Clients using it are refused at once.')) return;
      var r = await api('/v1/gateway/keys/' + encodeURIComponent(k.id), { method: 'DELETE' });
      if (r.status >= 300) setStatus('Revoke failed: ' + errorText(r), true); else { setStatus('Key ' + (k.name || k.id) + ' revoked.'); loadKeys(); }
    });
    return b;
  }

  async function loadKeys() {
    var r = await api('/v1/gateway/keys');
    var form = $('key-create');
    // 404: no key store. 401 to a key the admin endpoints just accepted: a gateway from before the
    // keys API, whose /v1 catch-all treats the path as a client pass-through. Both mean: no runtime keys.
    if (r.status === 404 || r.status === 401) {
      $('keys-note').textContent = 'Runtime keys need the key store (docs/keys.md): this gateway does not serve /v1/gateway/keys. Keys in the config file: see docs/add-a-team-or-key.md.';
      form.hidden = true; $('table-keys').replaceChildren();
      return;
    }
    if (r.status !== 200) { $('keys-note').textContent = 'Keys: ' + errorText(r); form.hidden = true; return; }
    form.hidden = false;
    var list = Array.isArray(r.body) ? r.body : (r.body.data || []);
    $('keys-note').textContent = list.length + ' keys. Keys from the config file are read-only here.';
    table('table-keys', [
      { label: 'Name', get: function (k) { return k.name; } },
      { label: 'Team', get: function (k) { return k.team; } },
      { label: 'Project', get: function (k) { return k.project; } },
      { label: 'Source', get: function (k) { return k.source; } },
      { label: 'Created', get: function (k) { return k.created_at; } },
      { label: 'Last used', get: function (k) { return k.last_used_at; } },
      { label: 'Expires', get: function (k) { return k.expires_at; } },
      { label: 'State', get: function (k) { return k.revoked || k.revoked_at ? 'revoked' : 'active'; } },
      { label: '', get: function (k) { return k.source === 'config' || k.revoked || k.revoked_at ? '' : revokeButton(k); } },
    ], list, 'No keys.');
  }

  function keyBody() {
    var v = function (id) { return $(id).value.trim(); };
    var body = { name: v('k-name'), team: v('k-team') };
    if (v('k-project')) body.project = v('k-project');
    if (v('k-expires')) body.expires_at = v('k-expires') + 'T00:00:00Z';
    if (v('k-models')) body.models = v('k-models').split(',').map(function (m) { return m.trim(); }).filter(Boolean);
    var budget = {};
    if (v('k-daily')) budget.daily_usd = Number(v('k-daily'));
    if (v('k-monthly')) budget.monthly_usd = Number(v('k-monthly'));
    if (Object.keys(budget).length) body.budget = budget;
    return body;
  }

  async function createKey(ev) {
    ev.preventDefault();
    var r = await api('/v1/gateway/keys', { method: 'POST', body: JSON.stringify(keyBody()) });
    if (r.status !== 201) { setStatus('Create failed: ' + errorText(r), true); return; }
    $('new-key-value').textContent = r.body.key;
    $('new-key').hidden = false;
    $('key-create').reset();
    setStatus('Key ' + (r.body.name || r.body.id) + ' created.');
    loadKeys();
  }

  async function loadAll() {
    if (!key()) { setStatus('Enter a gateway admin key. It is kept in this tab only (sessionStorage) and sent as a Bearer header.'); return; }
    setStatus('Loading...');
    var probe = await api('/v1/gateway/providers');
    if (probe.status === 401 || probe.status === 403) { setStatus('The gateway refused this key: ' + errorText(probe), true); return; }
    await Promise.all([loadSpend(), loadBudgets(), loadProviders(), loadKeys()]);
    setStatus('Updated ' + new Date().toISOString().slice(11, 19) + ' UTC.');
    document.body.setAttribute('data-loaded', 'true');
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('key-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var v = $('admin-key').value.trim();
      if (v) sessionStorage.setItem(STORE, v);
      $('admin-key').value = '';
      loadAll();
    });
    $('forget-key').addEventListener('click', function () { sessionStorage.removeItem(STORE); setStatus('Key forgotten.'); });
    $('filters').addEventListener('submit', function (ev) { ev.preventDefault(); loadSpend(); });
    $('key-create').addEventListener('submit', createKey);
    $('new-key-done').addEventListener('click', function () { $('new-key-value').textContent = ''; $('new-key').hidden = true; });
    loadAll();
  });
})();
`;
