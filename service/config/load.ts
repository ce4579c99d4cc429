/** Reads a YAML gateway config, interpolates ${ENV_VAR} references, and validates it. */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError, GatewayConfig, parseConfig } from './schema';

const REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Interpolates one string, adding each missing variable (with where it is) to `missing`. */
function interpolateString(value: string, env: NodeJS.ProcessEnv, path: string, missing: Array<[string, string]>): string {
  return value.replace(REF, (_m, varName: string, fallback: string | undefined) => {
    const v = env[varName];
    if (v !== undefined && v !== '') return v;
    if (fallback !== undefined) return fallback;
    missing.push([path || '(root)', varName]);
    return '';
  });
}

function walk(value: unknown, env: NodeJS.ProcessEnv, path: string, missing: Array<[string, string]>): unknown {
  if (typeof value === 'string') return interpolateString(value, env, path, missing);
  if (Array.isArray(value)) return value.map((v, i) => walk(v, env, `${path}[${i}]`, missing));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = walk(v, env, path ? `${path}.${k}` : k, missing);
    return out;
  }
  return value;
}

/**
 * Replaces ${NAME} and ${NAME:-default} in every string value (never in keys, so a
 * secret cannot change the structure). Missing variables without a default are one error
 * that lists every one of them, each with the config key that uses it, never a value.
 */
export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv, path = ''): unknown {
  const missing: Array<[string, string]> = [];
  const out = walk(value, env, path, missing);
  if (missing.length) {
    const names = [...new Set(missing.map(([, n]) => n))];
    throw new ConfigError([
      ...missing.map(([where, n]) => `${where}: environment variable ${n} is not set`),
      `${names.length} environment variable${names.length === 1 ? ' is' : 's are'} missing: ${names.join(', ')} (set ${names.length === 1 ? 'it' : 'them'}, or write \${NAME:-default} in the config)`,
    ]);
  }
  return out;
}

export function parseConfigText(text: string, env: NodeJS.ProcessEnv = {}): GatewayConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError([`YAML: ${(err as Error).message}`]);
  }
  if (!raw || typeof raw !== 'object') throw new ConfigError(['(root): the config must be a YAML mapping']);
  return parseConfig(interpolateEnv(raw, env));
}

export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  return parseConfigText(text, env);
}
