/**
 * Fenced blocks of the docs, for the docs test: language, text, where they are, and whether the page
 * marks them as not runnable (`<!-- docs-test: not-runnable: REASON -->` on the line before the fence).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(__dirname, '../..');

/** The README and the task pages: every block in them is run or checked. */
export const PAGES = [
  'README.md',
  'docs/quickstart.md',
  'docs/add-a-team-or-key.md',
  'docs/providers.md',
  'docs/budgets-and-spend.md',
  'docs/canary-and-rollback.md',
  'docs/rotate-a-secret.md',
  'docs/upgrade.md',
  'docs/continuation.md',
];

export interface Block {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  text: string;
  /** The reason given by a not-runnable marker, if any. */
  notRunnable?: string;
}

const MARKER = /^\s*<!-- docs-test: not-runnable: (.+?) -->\s*$/;

export function blocks(file: string): Block[] {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const indent = open[1].length;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]); j++) body.push(lines[j].slice(Math.min(indent, lines[j].length - lines[j].trimStart().length)));
    if (j === lines.length) throw new Error(`${file}:${i + 1}: unclosed code fence`);
    let k = i - 1;
    while (k >= 0 && lines[k].trim() === '') k--;
    const marker = k >= 0 ? MARKER.exec(lines[k]) : null;
    out.push({ file, line: i + 1, lang: open[2], text: body.join('\n'), notRunnable: marker?.[1] });
    i = j;
  }
  return out;
}

/** Shell commands of a block: continuations joined, comments and blank lines dropped, `a && b` split. */
export function commands(text: string): string[] {
  const joined = text.replace(/\\\n\s*/g, ' ');
  return joined
    .split('\n')
    .map((l) => stripComment(l).trim())
    .filter(Boolean)
    .flatMap((l) => l.split(/\s+&&\s+/));
}

/** Drops a `# comment` outside quotes. */
function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i);
  }
  return line;
}

/** Splits a command into words, honouring single and double quotes (no expansion). */
export function words(cmd: string): string[] {
  const out: string[] = [];
  const re = /'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(cmd))) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}
