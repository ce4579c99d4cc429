/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by package,
 * so a hot spot can be named without a GUI.
 *
 *   npx tsx bench/profile-summary.ts FILE.cpuprofile [--top 30]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Where a script belongs: a package under node_modules, node's internals, or the project's own file. */
export function ownerOf(url: string): string {
  if (!url) return '(native/gc/idle)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return 'node (core)';
  const i = url.indexOf('/dist/');
  return i >= 0 ? url.slice(i + 1) : url;
}

export function summarise(profile: Profile, top = 30): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...self.values()].reduce((s, x) => s + x, 0);
  const fns = new Map<string, number>();
  const owners = new Map<string, number>();
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    const key = `${f.functionName || '(anonymous)'}  ${ownerOf(f.url)}:${f.lineNumber + 1}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    owners.set(ownerOf(f.url), (owners.get(ownerOf(f.url)) ?? 0) + us);
  }
  // Inclusive time of the project's own functions (self + everything they call), to rank whole steps.
  const inclusive = new Map<string, number>();
  const totalOf = (id: number, onStack: Set<string>): number => {
    const n = byId.get(id)!;
    let t = self.get(id) ?? 0;
    const f = n.callFrame;
    const key = `${f.functionName || '(anonymous)'}  ${ownerOf(f.url)}:${f.lineNumber + 1}`;
    const mine = f.url.includes('/dist/') && !onStack.has(key);
    if (mine) onStack.add(key);
    for (const c of n.children ?? []) t += totalOf(c, onStack);
    if (mine) {
      onStack.delete(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + t);
    }
    return t;
  };
  const childIds = new Set(profile.nodes.flatMap((n) => n.children ?? []));
  for (const n of profile.nodes) if (!childIds.has(n.id)) totalOf(n.id, new Set());
  const table = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `${((us / total) * 100).toFixed(1).padStart(5)}%  ${k}`)
      .join('\n');
  return `total sampled: ${(total / 1e6).toFixed(2)} s\n\nself time by package/file:\n${table(owners, 20)}\n\nself time by function:\n${table(fns, top)}\n\ninclusive time of the project's functions:\n${table(inclusive, 25)}\n`;
}

if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: tsx bench/profile-summary.ts FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  const i = process.argv.indexOf('--top');
  process.stdout.write(summarise(JSON.parse(readFileSync(file, 'utf8')) as Profile, i > 0 ? Number(process.argv[i + 1]) : 30));
}
