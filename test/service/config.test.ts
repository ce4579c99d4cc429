/** Config validation: every kind of invalid config is refused with a message naming the key. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { loadConfigFile, parseConfigText } from '../../service/config/load';
import { ConfigError, providerApiKey } from '../../service/config/schema';
import { hashKey } from '../../service/tenancy/keys';
import { testTempDir } from '../helpers/temp-dirs';

const HASH = `sha256:${'a'.repeat(64)}`;
const valid = () => ({
  auth: { keys: [{ hash: HASH, name: 'app', team: 'search' }] },
  teams: [{ name: 'search', budget: { daily_usd: 10 } }],
  providers: [{ name: 'relay', base_url: 'https://relay.example.com/v1', api_key: '${RELAY_KEY}', models: [{ name: 'gpt-4o-mini', input_per_million: 0.15, output_per_million: 0.6 }] }],
});

function problems(mutate: (c: ReturnType<typeof valid> & Record<string, unknown>) => void, env: NodeJS.ProcessEnv = { RELAY_KEY: 'sk-test' }): string {
  const c = valid() as ReturnType<typeof valid> & Record<string, unknown>;
  mutate(c);
  try {
    parseConfigText(stringify(c), env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
    return err.message;
  }
  assert.fail('the config was accepted');
}

describe('config validation', () => {
  it('accepts a valid config, interpolates ${ENV} and fills defaults from the original design', () => {
    const c = parseConfigText(stringify(valid()), { RELAY_KEY: 'sk-test' });
    assert.equal(providerApiKey(c.providers[0]), 'sk-test');
    assert.equal(c.routing.strategy, 'cost-optimal');
    assert.equal(c.routing.fallback, true);
    assert.equal(c.routing.max_retries, 2);
    assert.equal(c.routing.retry_delay_ms, 200);
    assert.equal(c.cache.enabled, false);
    assert.equal(c.cache.ttl_seconds, 3600);
    assert.equal(c.server.metrics_port, 9090);
    assert.deepEqual(c.routing.exploration, { share: 0.05, reprobe_after_ms: 60_000 });
  });

  it('${VAR:-default} uses the default when the variable is unset', () => {
    const cfg = valid();
    cfg.providers[0].api_key = '${NOPE:-fallback}';
    assert.equal(providerApiKey(parseConfigText(stringify(cfg), {}).providers[0]), 'fallback');
  });

  const table: Array<[string, (c: ReturnType<typeof valid> & Record<string, unknown>) => void, RegExp, NodeJS.ProcessEnv?]> = [
    ['missing env var names the key and the variable', () => {}, /providers\[0\]\.api_key: environment variable RELAY_KEY is not set/, {}],
    [
      'no providers',
      (c) => {
        c.providers = [];
      },
      /providers: .*at least 1|providers: Too small/i,
    ],
    [
      'bad URL',
      (c) => {
        c.providers[0].base_url = 'not a url';
      },
      /providers\[0\]\.base_url: Invalid URL/,
    ],
    [
      'non-http URL',
      (c) => {
        c.providers[0].base_url = 'ftp://x.example.com';
      },
      /providers\[0\]\.base_url/,
    ],
    [
      'unknown strategy',
      (c) => {
        c.routing = { strategy: 'fastest' };
      },
      /routing\.strategy: Invalid option/,
    ],
    [
      'negative retries',
      (c) => {
        c.routing = { max_retries: -1 };
      },
      /routing\.max_retries/,
    ],
    [
      'wrong type',
      (c) => {
        c.cache = { enabled: 'yes' };
      },
      /cache\.enabled: Invalid input: expected boolean/,
    ],
    [
      'unknown key (typo)',
      (c) => {
        c.rate_limit = { requests_per_minut: 5 };
      },
      /rate_limit: unknown key\(s\) "requests_per_minut"/,
    ],
    [
      'key hash not sha256',
      (c) => {
        c.auth.keys[0].hash = 'sk-plaintext-key';
      },
      /auth\.keys\[0\]\.hash: must be "sha256:"/,
    ],
    [
      'key for an unknown team',
      (c) => {
        c.auth.keys[0].team = 'ghost';
      },
      /auth\.keys\[0\]\.team: unknown team "ghost"/,
    ],
    [
      'auth keys mode without keys',
      (c) => {
        c.auth = { mode: 'keys', keys: [] } as never;
      },
      /auth\.keys: at least one key is required/,
    ],
    [
      'duplicate key names, naming both entries',
      (c) => {
        c.auth.keys.push({ hash: `sha256:${'b'.repeat(64)}`, name: 'app', team: 'search' });
      },
      /auth\.keys\[1\]\.name: duplicate key name "app" \(also auth\.keys\[0\]\); limits are counted per name/,
    ],
    [
      'duplicate provider names',
      (c) => {
        c.providers.push({ ...c.providers[0] });
      },
      /providers: provider names must be unique/,
    ],
    [
      'azure without api_version',
      (c) => {
        (c.providers[0] as Record<string, unknown>).type = 'azure';
      },
      /providers\[0\]\.api_version: required for type azure/,
    ],
    [
      'bedrock without region',
      (c) => {
        Object.assign(c.providers[0], { type: 'bedrock', api_key: undefined });
        delete (c.providers[0] as Record<string, unknown>).api_key;
      },
      /providers\[0\]\.region: required for type bedrock/,
    ],
    [
      'bedrock with an api_key (it signs with AWS credentials)',
      (c) => {
        Object.assign(c.providers[0], { type: 'bedrock', region: 'us-east-1' });
      },
      /providers\[0\]: unknown key\(s\) "api_key"/,
    ],
    [
      'openai with an azure field',
      (c) => {
        Object.assign(c.providers[0], { api_version: '2024-10-21' });
      },
      /providers\[0\]: unknown key\(s\) "api_version"/,
    ],
    [
      'an unknown provider type',
      (c) => {
        (c.providers[0] as Record<string, unknown>).type = 'vertex';
      },
      /providers\[0\]\.type: .*openai.*azure.*anthropic.*bedrock/,
    ],
    [
      'alias to an unknown provider',
      (c) => {
        c.models = { fast: { targets: [{ provider: 'ghost', model: 'gpt-4o-mini' }] } };
      },
      /models\.fast\.targets\[0\]\.provider: unknown provider "ghost"/,
    ],
    [
      'alias to a model the provider does not serve',
      (c) => {
        c.models = { fast: { targets: [{ provider: 'relay', model: 'gpt-5' }] } };
      },
      /models\.fast\.targets\[0\]\.model: provider "relay" does not serve model "gpt-5"/,
    ],
    [
      'weights naming an unknown provider',
      (c) => {
        c.models = { 'gpt-4o-mini': { strategy: 'weighted', weights: { ghost: 5 } } };
      },
      /models\.gpt-4o-mini: unknown provider "ghost"/,
    ],
    [
      'negative price',
      (c) => {
        c.providers[0].models[0].input_per_million = -1;
      },
      /providers\[0\]\.models\[0\]\.input_per_million/,
    ],
    [
      'budget alert threshold over 1',
      (c) => {
        c.teams[0].budget = { daily_usd: 10, alert_threshold: 2 } as never;
      },
      /teams\[0\]\.budget\.alert_threshold/,
    ],
    [
      'redis block without host or url',
      (c) => {
        c.redis = { port: 6379 };
      },
      /redis: set url, host or sentinels/,
    ],
    [
      'redis.tls with a plain redis:// url',
      (c) => {
        c.redis = { url: 'redis://127.0.0.1:6379', tls: { ca_file: '/etc/ca.pem' } };
      },
      /redis\.tls: redis\.url is not rediss:\/\//,
    ],
    [
      'port out of range',
      (c) => {
        c.server = { port: 70000 };
      },
      /server\.port/,
    ],
  ];
  for (const [name, mutate, expected, env] of table) {
    it(name, () => assert.match(problems(mutate, env ?? { RELAY_KEY: 'sk-test' }), expected));
  }

  it('invalid YAML and unreadable files are ConfigErrors too', () => {
    assert.throws(() => parseConfigText('providers: [', {}), /YAML/);
    assert.throws(() => loadConfigFile('/nonexistent/gateway.yaml'), /cannot read config file .*ENOENT/);
  });

  it('every example config in config/ is valid', () => {
    const dir = join(__dirname, '../../config');
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 2);
    // Format-valid stand-ins for the secrets and URLs the examples take from the environment.
    const env = new Proxy({}, { get: (_t, name) => (/HASH/.test(String(name)) ? hashKey(String(name)) : /URL/.test(String(name)) ? 'http://127.0.0.1:1/v1' : 'dummy-value') }) as NodeJS.ProcessEnv;
    for (const f of files) {
      try {
        loadConfigFile(join(dir, f), env);
      } catch (err) {
        assert.fail(`${f}: ${(err as Error).message}`);
      }
    }
  });

  it('the gateway process refuses a bad config at start, naming the key, exit code 1', async () => {
    const dir = testTempDir('aigw-cfg-');
    const file = join(dir, 'bad.yaml');
    const cfg = valid();
    cfg.providers[0].base_url = 'nope';
    writeFileSync(file, stringify(cfg));
    const run = promisify(execFile);
    await assert.rejects(
      run(process.execPath, ['--import', 'tsx', join(__dirname, '../../service/main.ts'), '--config', file], { env: { ...process.env, RELAY_KEY: 'x' } }),
      (err: { code: number; stderr: string }) => {
        assert.equal(err.code, 1);
        assert.match(err.stderr, /providers\[0\]\.base_url: Invalid URL/);
        return true;
      },
    );
  });
});
