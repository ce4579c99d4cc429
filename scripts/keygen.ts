/**
 * npm run keygen [-- --name NAME --team TEAM --project PROJECT] [-- --admin]
 *
 * Prints a new random gateway key, its sha256 hash and the config snippet that grants it.
 * Only the hash goes into the config; hand the key to its owner and do not store it.
 */
import { parseArgs } from 'node:util';
import { generateKey, hashKey } from '../service/tenancy/keys';

const { values } = parseArgs({
  options: {
    name: { type: 'string', default: 'my-key' },
    team: { type: 'string', default: 'default' },
    project: { type: 'string', default: 'default' },
    admin: { type: 'boolean', default: false },
  },
});

const key = generateKey();
const hash = hashKey(key);
const snippet = values.admin
  ? ['auth:', '  admin_key_hashes:', `    - "${hash}"`]
  : ['auth:', '  keys:', `    - hash: "${hash}"`, `      name: ${values.name}`, `      team: ${values.team}`, `      project: ${values.project}`];

process.stdout.write(
  [
    `key:  ${key}`,
    `hash: ${hash}`,
    '',
    '# Add to the gateway config (the key itself never goes there):',
    ...snippet,
    '',
    '# Give the key to its owner now; it cannot be recovered from the hash.',
    '',
  ].join('\n'),
);
