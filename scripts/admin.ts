/**
 * npm run admin -- <command>: the gateway's admin API from a terminal (docs/keys.md).
 *
 *   npm run admin -- keys create --team search --budget-daily 50
 *   npm run admin -- keys list [--team search]
 *   npm run admin -- keys revoke KEY_ID
 *   npm run admin -- keys rotate KEY_ID [--grace 3600]
 *   npm run admin -- teams create NAME [--budget-daily USD] [--budget-monthly USD] [--rpm N] [--tpm N]
 *   npm run admin -- teams list
 *   npm run admin -- teams update NAME [--budget-daily USD] [--budget-monthly USD] [--rpm N] [--tpm N] [--clear-budget] [--clear-limits]
 *   npm run admin -- spend [--team T] [--key ID] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--group-by team,model] [--csv]
 *   npm run admin -- audit [--limit 50]
 *
 * The gateway: --url or AIGW_URL (default http://127.0.0.1:8080); the admin key: --admin-key or AIGW_ADMIN_KEY.
 * Exit codes: 0 done, 1 the gateway refused or could not be reached, 2 a usage error.
 */
import { parseArgs } from 'node:util';

const HELP = `usage: npm run admin -- <command> [options]

keys create --team T [--name N] [--project P] [--models m1,m2] [--budget-daily USD] [--budget-monthly USD]
            [--rpm N] [--tpm N] [--expires 2027-01-31T00:00:00Z | --expires-in 30d]
                                 issue a key (printed once; only its hash is stored)
keys list [--team T]             keys from the config (read-only) and from the API; never a secret
keys revoke KEY_ID               refused on every replica within a second
keys rotate KEY_ID [--grace S]   a new key; the old one keeps working for S seconds (default: the gateway's)
teams create NAME [--budget-daily USD] [--budget-monthly USD] [--rpm N] [--tpm N]
teams list
teams update NAME [--budget-daily USD] [--budget-monthly USD] [--rpm N] [--tpm N] [--clear-budget] [--clear-limits]
spend [--team T] [--key ID] [--project P] [--model M] [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--group-by team,key,model,provider,project,day] [--csv]
audit [--limit N]

options: --url URL (or AIGW_URL, default http://127.0.0.1:8080)  --admin-key KEY (or AIGW_ADMIN_KEY)  --json  -h, --help
`;

class UsageError extends Error {}

const OPTIONS = {
  url: { type: 'string' },
  'admin-key': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  team: { type: 'string' },
  name: { type: 'string' },
  project: { type: 'string' },
  models: { type: 'string' },
  'budget-daily': { type: 'string' },
  'budget-monthly': { type: 'string' },
  rpm: { type: 'string' },
  tpm: { type: 'string' },
  expires: { type: 'string' },
  'expires-in': { type: 'string' },
  grace: { type: 'string' },
  key: { type: 'string' },
  model: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  'group-by': { type: 'string' },
  csv: { type: 'boolean' },
  limit: { type: 'string' },
  'clear-budget': { type: 'boolean' },
  'clear-limits': { type: 'boolean' },
} as const;

type Opts = Partial<Record<keyof typeof OPTIONS, string | boolean>>;

function num(opts: Opts, name: keyof typeof OPTIONS, integer = false): number | undefined {
  const v = opts[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n)))
    throw new UsageError(`--${name} must be a ${integer ? 'whole ' : ''}number, got "${v}"`);
  return n;
}

function budgetOf(opts: Opts) {
  const daily = num(opts, 'budget-daily');
  const monthly = num(opts, 'budget-monthly');
  return daily === undefined && monthly === undefined ? undefined : { ...(daily !== undefined && { daily_usd: daily }), ...(monthly !== undefined && { monthly_usd: monthly }) };
}

function limitsOf(opts: Opts) {
  const rpm = num(opts, 'rpm', true);
  const tpm = num(opts, 'tpm', true);
  return rpm === undefined && tpm === undefined ? undefined : { ...(rpm !== undefined && { requests_per_minute: rpm }), ...(tpm !== undefined && { tokens_per_minute: tpm }) };
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** --expires or --expires-in (30d, 12h, 90m, 3600s) as an ISO time. */
function expiryOf(opts: Opts, now = Date.now()): string | undefined {
  if (opts.expires !== undefined && opts['expires-in'] !== undefined) throw new UsageError('give --expires or --expires-in, not both');
  if (typeof opts.expires === 'string') {
    const t = Date.parse(opts.expires);
    if (Number.isNaN(t)) throw new UsageError(`--expires must be an ISO 8601 time, got "${opts.expires}"`);
    return new Date(t).toISOString();
  }
  if (typeof opts['expires-in'] === 'string') {
    const m = /^(\d+)([smhd])$/.exec(opts['expires-in']);
    if (!m) throw new UsageError(`--expires-in takes a number and a unit (s, m, h, d), e.g. 30d; got "${opts['expires-in']}"`);
    return new Date(now + Number(m[1]) * UNITS[m[2]] * 1000).toISOString();
  }
  return undefined;
}

/** The HTTP call for a command: method, path (with query) and body. Pure; throws UsageError. */
export function requestFor(positionals: string[], opts: Opts): { method: string; path: string; body?: unknown; csv?: boolean } {
  const [group, action, arg] = positionals;
  const need = (what: string) => {
    if (!arg) throw new UsageError(`${group} ${action} needs ${what}`);
    return encodeURIComponent(arg);
  };
  const str = (k: keyof typeof OPTIONS) => (typeof opts[k] === 'string' ? (opts[k] as string) : undefined);
  switch (`${group ?? ''} ${action ?? ''}`.trim()) {
    case 'keys create':
      if (!opts.team) throw new UsageError('keys create needs --team');
      return {
        method: 'POST',
        path: '/v1/gateway/keys',
        body: {
          team: str('team'),
          name: str('name'),
          project: str('project'),
          models: str('models')
            ?.split(',')
            .map((m) => m.trim())
            .filter(Boolean),
          budget: budgetOf(opts),
          rate_limit: limitsOf(opts),
          expires_at: expiryOf(opts),
        },
      };
    case 'keys list':
      return { method: 'GET', path: `/v1/gateway/keys${opts.team ? `?team=${encodeURIComponent(String(opts.team))}` : ''}` };
    case 'keys revoke':
      return { method: 'DELETE', path: `/v1/gateway/keys/${need('a key id')}` };
    case 'keys rotate':
      return { method: 'POST', path: `/v1/gateway/keys/${need('a key id')}/rotate`, body: { grace_seconds: num(opts, 'grace', true) } };
    case 'teams create':
      return { method: 'POST', path: '/v1/gateway/teams', body: { name: need('a team name') && arg, budget: budgetOf(opts), rate_limit: limitsOf(opts) } };
    case 'teams list':
      return { method: 'GET', path: '/v1/gateway/teams' };
    case 'teams update': {
      const body = { budget: opts['clear-budget'] ? null : budgetOf(opts), rate_limit: opts['clear-limits'] ? null : limitsOf(opts) };
      if (body.budget === undefined && body.rate_limit === undefined) throw new UsageError('teams update needs a budget or limit option (or --clear-budget / --clear-limits)');
      return { method: 'PATCH', path: `/v1/gateway/teams/${need('a team name')}`, body };
    }
    case 'spend': {
      const q = new URLSearchParams();
      for (const [opt, param] of [
        ['team', 'team'],
        ['key', 'key'],
        ['project', 'project'],
        ['model', 'model'],
        ['from', 'from'],
        ['to', 'to'],
        ['group-by', 'group_by'],
      ] as const)
        if (typeof opts[opt] === 'string') q.set(param, opts[opt] as string);
      if (opts.csv) q.set('format', 'csv');
      const qs = q.toString();
      return { method: 'GET', path: `/v1/gateway/spend${qs ? `?${qs}` : ''}`, csv: opts.csv === true };
    }
    case 'audit':
      return { method: 'GET', path: `/v1/gateway/audit${opts.limit ? `?limit=${num(opts, 'limit', true)}` : ''}` };
    default:
      throw new UsageError(positionals.length ? `unknown command "${positionals.join(' ')}"` : 'no command given');
  }
}

function table(rows: Array<Record<string, unknown>>, cols: string[]): string {
  const cell = (v: unknown) => (v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(cols), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n') + '\n';
}

const LIST_COLUMNS: Record<string, string[]> = {
  'gateway.key': ['id', 'name', 'team', 'project', 'status', 'source', 'expires_at', 'last_used_at', 'budget'],
  'gateway.team': ['name', 'source', 'budget', 'rate_limit'],
  'gateway.audit_event': ['at', 'actor', 'action', 'target'],
};

/** What to print for an answer: lists as tables (unless --json), a created key with a warning. */
export function render(answer: unknown, json: boolean): string {
  const a = answer as { object?: string; data?: Array<Record<string, unknown>>; key?: string };
  if (!json && a.object === 'list' && Array.isArray(a.data)) {
    const kind = a.data[0]?.object as string | undefined;
    return a.data.length === 0 ? '(none)\n' : table(a.data, LIST_COLUMNS[kind ?? ''] ?? Object.keys(a.data[0]));
  }
  const text = `${JSON.stringify(answer, null, 2)}\n`;
  return !json && a.key ? `${text}\nThe key above is shown once; only its hash is stored. Hand it over now.\n` : text;
}

async function run(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  const opts = values as Opts;
  if (opts.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const call = requestFor(positionals, opts);
  const url = String(opts.url ?? env.AIGW_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const adminKey = opts['admin-key'] ?? env.AIGW_ADMIN_KEY;
  if (!adminKey) throw new UsageError('no admin key: pass --admin-key or set AIGW_ADMIN_KEY');
  let res: Response;
  try {
    res = await fetch(url + call.path, {
      method: call.method,
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json', accept: call.csv ? 'text/csv' : 'application/json' },
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
    });
  } catch (err) {
    process.stderr.write(`cannot reach the gateway at ${url}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}\n`);
    return 1;
  }
  const text = await res.text();
  if (!res.ok) {
    let message = text.slice(0, 500);
    try {
      const e = (JSON.parse(text) as { error?: { message?: string; code?: string } }).error;
      if (e?.message) message = `${e.message}${e.code ? ` (${e.code})` : ''}`;
    } catch {
      /* not JSON: print as is */
    }
    process.stderr.write(`error ${res.status}: ${message}\n`);
    return 1;
  }
  process.stdout.write(call.csv ? text : render(JSON.parse(text), opts.json === true));
  return 0;
}

if (require.main === module) {
  run(process.argv.slice(2), process.env).then(
    (code) => process.exit(code),
    (err: Error) => {
      const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
      process.stderr.write(usage ? `${err.message}\nRun "npm run admin -- --help" for the commands.\n` : `admin failed: ${err.message}\n`);
      process.exit(usage ? 2 : 1);
    },
  );
}
