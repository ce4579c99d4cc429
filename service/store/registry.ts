/**
 * The runtime keys and teams each replica authenticates against: an in-memory snapshot of the
 * store, looked up by a presented key's digest (tenancy/keys.ts HashSet), reloaded when it changes.
 *
 * Propagation: every change bumps store_state.version and sends NOTIFY aigw_store in its
 * transaction (directory.ts). A replica reloads on the notification (LISTEN on a dedicated
 * connection: milliseconds), and, as the safety net for a missed notification or a broken LISTEN
 * connection, polls the version every `pollMs` (250 ms by default) and reloads when it moved.
 * A created or revoked key is thus seen by every replica within pollMs + one reload (< 1 s).
 * Expiry needs no propagation: each lookup compares expires_at with the clock.
 */
import type { KeyDirectory, Principal, ScopeBudget } from '../tenancy/contracts';
import { HashSet } from '../tenancy/keys';
import type { Db } from './db';
import { activeKeys, KeyRow, listTeams, RateLimit, STORE_CHANNEL, storeVersion, TeamRow, touchKeys } from './directory';

interface Entry {
  principal: Principal;
  /** ms since epoch; Infinity: never. */
  expiresAt: number;
}

export interface RegistryOptions {
  pollMs?: number;
  /** How often last_used_at is written (ms). */
  touchMs?: number;
  onError?: (operation: string, err: unknown) => void;
}

export function principalOf(k: KeyRow): Principal {
  const p: Principal = { keyName: k.name, team: k.team, project: k.project, keyId: k.id };
  if (k.models) p.models = Object.freeze([...k.models]);
  if (k.budget && (k.budget.daily_usd !== undefined || k.budget.monthly_usd !== undefined)) p.budget = k.budget;
  if (k.rate_limit) p.rateLimit = k.rate_limit;
  return Object.freeze(p);
}

export class KeyRegistry implements KeyDirectory {
  private keys = new HashSet<Entry>([]);
  private teams = new Map<string, TeamRow>();
  private version = -1;
  private loading: Promise<void> | null = null;
  private again = false;
  private used = new Map<string, number>();
  private readonly timers: NodeJS.Timeout[] = [];
  private unlisten: (() => Promise<void>) | undefined;

  constructor(
    private readonly db: Db,
    private readonly opts: RegistryOptions = {},
  ) {}

  /** Loads the snapshot, then listens and polls. Rejects when the first load fails (the store is unusable). */
  async start(): Promise<void> {
    await this.reload();
    this.unlisten = await this.db.listen(
      STORE_CHANNEL,
      () => void this.refresh(true),
      (err) => this.opts.onError?.('store_listen', err),
    );
    const poll = setInterval(() => void this.refresh(false), this.opts.pollMs ?? 250);
    const touch = setInterval(() => void this.flushUsed(), this.opts.touchMs ?? 5_000);
    for (const t of [poll, touch]) t.unref();
    this.timers.push(poll, touch);
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.unlisten?.();
    await this.flushUsed();
  }

  findDigest(digest: string, now: number): Principal | undefined {
    const e = this.keys.findDigest(digest);
    return e && now < e.expiresAt ? e.principal : undefined;
  }

  team(name: string): { budget?: ScopeBudget; rate_limit?: RateLimit } | undefined {
    const t = this.teams.get(name);
    return t ? { budget: t.budget ?? undefined, rate_limit: t.rate_limit ?? undefined } : undefined;
  }

  hasTeams(): boolean {
    return this.teams.size > 0;
  }

  noteUsed(keyId: string, at: number): void {
    this.used.set(keyId, at);
  }

  /** Reloads when notified (force) or when the version moved; one load at a time, one more queued if asked meanwhile. */
  async refresh(force: boolean): Promise<void> {
    if (this.loading) {
      this.again ||= force;
      return this.loading;
    }
    this.loading = (async () => {
      try {
        if (force || (await storeVersion(this.db)) !== this.version) await this.reload();
      } catch (err) {
        this.opts.onError?.('store_refresh', err);
      } finally {
        this.loading = null;
      }
    })();
    await this.loading;
    if (this.again) {
      this.again = false;
      await this.refresh(true);
    }
  }

  private async reload(): Promise<void> {
    const version = await storeVersion(this.db);
    const [keys, teams] = await Promise.all([activeKeys(this.db), listTeams(this.db)]);
    this.keys = new HashSet(keys.map((k) => [k.hash, { principal: principalOf(k), expiresAt: k.expires_at ? k.expires_at.getTime() : Infinity }] as const));
    this.teams = new Map(teams.map((t) => [t.name, t]));
    this.version = version;
  }

  private async flushUsed(): Promise<void> {
    if (this.used.size === 0) return;
    const used = this.used;
    this.used = new Map();
    await touchKeys(this.db, used).catch((err) => {
      // The database is away: the stamps wait for the next round instead of being lost (the latest use wins).
      for (const [id, at] of used) if (!(this.used.get(id)! >= at)) this.used.set(id, at);
      this.opts.onError?.('store_touch', err);
    });
  }
}
