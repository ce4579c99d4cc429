/**
 * Functions short enough to read in one screen (docs/internals.md, conventions): no function, method,
 * arrow function or constructor in service/ or infra/ spans more than 60 lines. Measured with
 * the TypeScript compiler's own parser on the real source.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const ROOT = join(__dirname, '../..');
const MAX_LINES = 60;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

/** Functions (of any kind) longer than `max` lines in one source text, as "file:line name (N lines)". */
export function longFunctions(file: string, text: string, max: number): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = end - start + 1;
      if (lines > max) {
        const name = (node as ts.FunctionLikeDeclaration).name?.getText(sf) ?? (ts.isConstructorDeclaration(node) ? 'constructor' : '(anonymous)');
        found.push(`${file}:${start + 1} ${name} (${lines} lines)`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

describe('function length', () => {
  it(`no function in service/ or infra/ is longer than ${MAX_LINES} lines`, () => {
    const files = [...sourceFiles(join(ROOT, 'service')), ...sourceFiles(join(ROOT, 'infra'))];
    assert.ok(files.length > 50, `only ${files.length} files found`);
    const long = files.flatMap((f) => longFunctions(relative(ROOT, f), readFileSync(f, 'utf8'), MAX_LINES));
    assert.deepEqual(long, []);
  });

  it('the measure counts every kind of function (it is not vacuous)', () => {
    const body = (n: number) => Array.from({ length: n }, (_, i) => `  x += ${i};`).join('\n');
    const text = `function f() {\n${body(60)}\n}\nconst g = () => {\n${body(10)}\n};\nclass C {\n  constructor() {\n${body(59)}\n  }\n}\n`;
    assert.deepEqual(longFunctions('t.ts', text, 60), ['t.ts:1 f (62 lines)', 't.ts:76 constructor (61 lines)']);
  });
});
