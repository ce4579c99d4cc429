/** The operator page's HTML shell: no inline script or style (the CSP forbids both); app.js fills it in. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>AI gateway: spend and health</title>
<link rel="stylesheet" href="/ui/app.css">
<script src="/ui/app.js" defer></script>
</head>
<body>
<header>
  <h1>AI gateway</h1>
  <form id="key-form" autocomplete="off">
    <label for="admin-key">Admin key</label>
    <input id="admin-key" type="password" placeholder="sk-gw-..." spellcheck="false">
    <button type="submit">Use key</button>
    <button type="button" id="forget-key">Forget</button>
  </form>
</header>
<p id="status" role="status">Enter a gateway admin key. It is kept in this tab only (sessionStorage) and sent as a Bearer header.</p>
<main>
  <section id="spend">
    <h2>Spend</h2>
    <form id="filters" autocomplete="off">
      <label>From <input id="from" type="date"></label>
      <label>To <input id="to" type="date"></label>
      <label>Team <input id="team" type="text" size="12" placeholder="all"></label>
      <label>Project <input id="project" type="text" size="12" placeholder="all"></label>
      <button type="submit">Show</button>
    </form>
    <p id="spend-totals"></p>
    <h3>By day</h3><div id="chart-day" class="chart"></div>
    <div class="cols">
      <div><h3>By team</h3><div id="chart-team" class="chart"></div><div id="table-team"></div></div>
      <div><h3>By model</h3><div id="chart-model" class="chart"></div><div id="table-model"></div></div>
    </div>
    <h3>By project</h3><div id="table-project"></div>
  </section>
  <section id="budgets"><h2>Budgets used</h2><div id="table-budgets"></div></section>
  <section id="providers"><h2>Provider health</h2><p id="providers-summary"></p><div id="table-providers"></div></section>
  <section id="keys">
    <h2>Keys</h2>
    <p id="keys-note"></p>
    <div id="table-keys"></div>
    <form id="key-create" autocomplete="off" hidden>
      <h3>Create a key</h3>
      <label>Name <input id="k-name" required size="14"></label>
      <label>Team <input id="k-team" required size="12"></label>
      <label>Project <input id="k-project" size="12" placeholder="default"></label>
      <label>Expires <input id="k-expires" type="date"></label>
      <label>Models <input id="k-models" size="20" placeholder="all (or a,b)"></label>
      <label>Daily $ <input id="k-daily" type="number" min="0" step="any" size="6"></label>
      <label>Monthly $ <input id="k-monthly" type="number" min="0" step="any" size="6"></label>
      <button type="submit">Create</button>
    </form>
    <div id="new-key" hidden>
      <p>New key, shown once: copy it now; the gateway keeps only its hash.</p>
      <code id="new-key-value"></code> <button type="button" id="new-key-done">Done</button>
    </div>
  </section>
</main>
</body>
</html>
`;
