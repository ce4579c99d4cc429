/** Reads a YAML gateway config, interpolates ${ENV_VAR} references, and validates it. */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError, GatewayConfig, parseConfig } from './schema';

const REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces ${NAME} and ${NAME:-default} in every string value (never in keys, so a
 * secret cannot change the structure). A missing variable without a default is an
 * error that names the config key and the variable, never its value.
 */
export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv, path = ''): unknown {
  if (typeof value === 'string') {
    const missing: string[] = [];
    const out = value.replace(REF, (_m, varName: string, fallback: string | undefined) => {
      const v = env[varName];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      missing.push(varName);
      return '';
    });
    if (missing.length) throw new ConfigError(missing.map((n) => `${path || '(root)'}: environment variable ${n} is not set`));
    return out;
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateEnv(v, env, `${path}[${i}]`));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolateEnv(v, env, path ? `${path}.${k}` : k);
    return out;
  }
  return value;
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
