// `npm test`: every mocha suite (test/**/*.test.ts). `npm test -- FILE...` (paths or globs, with
// any mocha options): only those files. .mocharc.json holds the shared options but no spec list,
// because mocha adds the spec files of its config to the ones named on the command line.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const ALL = 'test/**/*.test.ts';
const args = process.argv.slice(2);
const namesFiles = args.some((a) => a === '--spec' || a.startsWith('--spec=') || (!a.startsWith('-') && (existsSync(a) || /[*?{]/.test(a))));
const mocha = createRequire(import.meta.url).resolve('mocha/bin/mocha.js');
// process.execPath: the suite (and every gateway it spawns) runs on the node that runs npm test.
const run = spawnSync(process.execPath, [mocha, ...(namesFiles ? [] : [ALL]), ...args], { stdio: 'inherit' });
process.exit(run.status ?? 1);
