/**
 * What every script's command line shares: `--help`/`-h` prints the usage and exits 0; a usage error
 * prints one clear line, the usage, and exits 2 (never a stack trace).
 */
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, ParseArgsConfig } from 'node:util';

/** The Pulumi stacks of this repository: stacks/Pulumi.<name>.yaml (Pulumi.yaml's stackConfigDir). */
export const knownStacks = (dir = resolve(__dirname, '..', 'stacks')): string[] =>
  readdirSync(dir)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => !!s)
    .sort();

export const wantsHelp = (argv: string[]): boolean => argv.includes('--help') || argv.includes('-h');

export function printHelp(help: string): never {
  process.stdout.write(help.endsWith('\n') ? help : `${help}\n`);
  process.exit(0);
}

/** A usage error: `<script>: <problem>`, the usage line, a pointer to --help; exit 2. */
export function usageError(script: string, problem: string, usage: string): never {
  process.stderr.write(`${script}: ${problem}\n${usage}\nRun with --help for the options.\n`);
  process.exit(2);
}

/** node:util parseArgs (strict), with its errors ("Unknown option '--nmae'") turned into usage errors. */
export function parseOptions<O extends NonNullable<ParseArgsConfig['options']>>(script: string, usage: string, options: O, argv: string[]) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    return usageError(script, (err as Error).message.split('\n')[0].replace(/\. To specify a positional argument.*$/, ''), usage);
  }
}
