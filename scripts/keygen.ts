/**
 * npm run keygen -- [--name NAME] [--team TEAM] [--project PROJECT] [--admin] [--stack STACK]
 *
 * Prints a new random gateway key, its sha256 hash, and how to grant it: for a Pulumi stack, the
 * stack-file lines and the exact `pulumi config set --secret` command (infra/config.ts reads key
 * hashes from the secrets clientKeyHashes.<name> and adminKeyHashes.<name>); otherwise the YAML for
 * a plain gateway config. Only the hash goes into config; hand the key to its owner and do not store it.
 * `pulumi config set --path 'clientKeyHashes.NAME' VALUE` sets NAME inside the map clientKeyHashes, and
 * --secret encrypts it (https://www.pulumi.com/docs/iac/cli/commands/pulumi_config_set/).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { dnsLabel } from '../service/config/schema';
import { generateKey, hashKey } from '../service/tenancy/keys';
import { knownStacks, parseOptions, printHelp, usageError, wantsHelp } from './cli';

const STACKS = resolve(__dirname, '..', 'stacks');
const USAGE = 'usage: npm run keygen -- [--name NAME] [--team TEAM] [--project PROJECT] [--admin] [--stack STACK]';
const HELP = `${USAGE}

Makes a new gateway key and prints the key (give it to its owner; it is shown once), its sha256
hash, and how to grant it.

  --name NAME       the key's name in logs, metrics and limits (default: my-key; admin: admin)
  --team TEAM       the team it spends for (default: default)
  --project PROJECT the project within the team (default: default)
  --admin           an admin key (GET /v1/gateway/*, the /ui page) instead of a client key
  --stack STACK     print the Pulumi stack lines (stacks/Pulumi.STACK.yaml) and the
                    \`pulumi config set --secret\` command, instead of plain-config YAML
  -h, --help        this help

Names, teams and projects follow the gateway's rule: a DNS label (lower-case letters, digits and -,
at most 63 characters, starting and ending with a letter or digit).

Examples:
  npm run keygen -- --name search-backend --team search
  npm run keygen -- --name search-backend --team search --stack production
  npm run keygen -- --admin --name ops --stack staging
`;

interface KeyRequest {
  name: string;
  team: string;
  project: string;
  admin: boolean;
  stack?: string;
}

/** Validates the options as the gateway's config schema does (names are DNS labels). */
function request(argv: string[]): KeyRequest {
  const v = parseOptions(
    'keygen',
    USAGE,
    { name: { type: 'string' }, team: { type: 'string' }, project: { type: 'string' }, admin: { type: 'boolean' }, stack: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    argv,
  );
  const req: KeyRequest = { name: v.name ?? (v.admin ? 'admin' : 'my-key'), team: v.team ?? 'default', project: v.project ?? 'default', admin: !!v.admin, stack: v.stack };
  for (const field of ['name', 'team', 'project'] as const) {
    const r = dnsLabel.safeParse(req[field]);
    if (!r.success) usageError('keygen', `--${field} "${req[field]}" ${r.error.issues[0].message}`, USAGE);
  }
  if (req.admin && (v.team !== undefined || v.project !== undefined)) usageError('keygen', 'an admin key has no team or project', USAGE);
  if (req.stack !== undefined && !knownStacks().includes(req.stack)) usageError('keygen', `unknown stack "${req.stack}"; known stacks: ${knownStacks().join(', ')}`, USAGE);
  return req;
}

/** The stack's declared gateway teams (empty when it declares none). */
function stackTeams(stack: string): string[] {
  const doc = parseYaml(readFileSync(join(STACKS, `Pulumi.${stack}.yaml`), 'utf8')) as { config?: Record<string, { teams?: Array<{ name: string }> }> };
  return (doc.config?.['ai-gateway:gateway']?.teams ?? []).map((t) => t.name);
}

export function stackLines(req: KeyRequest, hash: string): string[] {
  const file = `stacks/Pulumi.${req.stack}.yaml`;
  if (req.admin) {
    return [
      `# 1. Add "${req.name}" to ai-gateway:adminKeys in ${file}:`,
      '  ai-gateway:adminKeys:',
      `    - ${req.name}`,
      '# 2. Set its hash as a secret:',
      `pulumi config set --stack ${req.stack} --secret --path 'adminKeyHashes.${req.name}' ${hash}`,
    ];
  }
  const teams = stackTeams(req.stack!);
  const teamNote =
    teams.length && !teams.includes(req.team)
      ? [`# The stack declares teams (${teams.join(', ')}) and not "${req.team}": add it under ai-gateway:gateway teams too (once any team is declared, every key's team must be).`]
      : [];
  return [
    `# 1. Add the key under ai-gateway:gateway -> auth.keys in ${file}:`,
    `        - name: ${req.name}`,
    `          team: ${req.team}`,
    `          project: ${req.project}`,
    ...teamNote,
    '# 2. Set its hash as a secret:',
    `pulumi config set --stack ${req.stack} --secret --path 'clientKeyHashes.${req.name}' ${hash}`,
  ];
}

export function configLines(req: KeyRequest, hash: string): string[] {
  if (req.admin) return ['# Add to the gateway config (the key itself never goes there):', 'auth:', '  admin_key_hashes:', `    - "${hash}" # ${req.name}`];
  return [
    '# Add to the gateway config (the key itself never goes there):',
    'auth:',
    '  keys:',
    `    - hash: "${hash}"`,
    `      name: ${req.name}`,
    `      team: ${req.team}`,
    `      project: ${req.project}`,
  ];
}

function main(argv: string[]): void {
  if (wantsHelp(argv)) printHelp(HELP);
  const req = request(argv);
  const key = generateKey();
  const hash = hashKey(key);
  const grant = req.stack ? stackLines(req, hash) : configLines(req, hash);
  process.stdout.write([`key:  ${key}`, `hash: ${hash}`, '', ...grant, '', `# Give the ${req.admin ? 'admin ' : ''}key to its owner now; it cannot be recovered from the hash.`, ''].join('\n'));
}

if (require.main === module) main(process.argv.slice(2));
