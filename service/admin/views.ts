/**
 * What the admin API shows of keys and teams: never a key, never a hash.
 */
import type { ApiKeyConfig, TeamConfig } from '../config/schema';
import type { KeyRow, TeamRow } from '../store/directory';

const iso = (d: Date | null | undefined): string | null => (d ? new Date(d).toISOString() : null);

export function keyStatus(k: Pick<KeyRow, 'revoked_at' | 'expires_at'>, now: number): 'active' | 'expired' | 'revoked' {
  if (k.revoked_at) return 'revoked';
  if (k.expires_at && new Date(k.expires_at).getTime() <= now) return 'expired';
  return 'active';
}

export function keyView(k: KeyRow, now: number) {
  return {
    object: 'gateway.key',
    id: k.id,
    name: k.name,
    team: k.team,
    project: k.project,
    models: k.models,
    rate_limit: k.rate_limit,
    budget: k.budget,
    status: keyStatus(k, now),
    created_at: iso(k.created_at),
    expires_at: iso(k.expires_at),
    revoked_at: iso(k.revoked_at),
    last_used_at: iso(k.last_used_at),
    rotated_from: k.rotated_from,
    created_by: k.created_by,
    source: 'api' as const,
    read_only: false,
  };
}

/** A key from the config file: listed, never changed through the API (GitOps owns it). */
export function configKeyView(k: ApiKeyConfig) {
  return {
    object: 'gateway.key',
    id: `config:${k.name}`,
    name: k.name,
    team: k.team,
    project: k.project,
    models: null,
    rate_limit: k.rate_limit ?? null,
    budget: null,
    status: 'active' as const,
    created_at: null,
    expires_at: null,
    revoked_at: null,
    last_used_at: null,
    rotated_from: null,
    created_by: 'config',
    source: 'config' as const,
    read_only: true,
  };
}

export function teamView(t: TeamRow) {
  return { object: 'gateway.team', name: t.name, budget: t.budget, rate_limit: t.rate_limit, created_at: iso(t.created_at), updated_at: iso(t.updated_at), source: 'api' as const, read_only: false };
}

export function configTeamView(t: TeamConfig) {
  return { object: 'gateway.team', name: t.name, budget: t.budget ?? null, rate_limit: t.rate_limit ?? null, created_at: null, updated_at: null, source: 'config' as const, read_only: true };
}
