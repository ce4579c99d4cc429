/**
 * npm run demo: two simulated OpenAI-compatible providers on loopback (one slower and
 * pricier, one cheap and flaky), the gateway in front of them on config/demo.yaml, and a
 * ready-to-paste curl and OpenAI SDK example. Runs until Ctrl-C.
 *
 * Environment: PORT (default 8080), METRICS_PORT (9090), REDIS_URL (unset: no Redis,
 * in-memory limits and spend), LOG_LEVEL (default warn, so the example output stays readable),
 * DATABASE_URL (unset: the embedded PGlite store, in memory; DEMO_STORE=off: no store).
 */
import { parseConfig } from '../service/config/schema';
import { startGateway } from '../service/server';
import { printHelp, usageError, wantsHelp } from './cli';
import { startDemoProviders } from './demo-setup';

const USAGE = 'usage: npm run demo   (environment: PORT, METRICS_PORT, REDIS_URL, LOG_LEVEL)';
const HELP = `${USAGE}

Starts two simulated OpenAI-compatible providers on 127.0.0.1 (premium: slow and pricey; budget:
cheap and flaky) and the gateway in front of them (config/demo.yaml), prints a client key, an admin
key and examples to paste, and runs until Ctrl-C. Nothing to install and no provider account needed.

Environment:
  PORT          the gateway's port (default 8080)
  METRICS_PORT  the Prometheus port (default 9090)
  REDIS_URL     use this Redis for limits and spend (default: none, in memory)
  LOG_LEVEL     default warn

Then open http://127.0.0.1:8080/ui with the admin key for spend and provider health.
`;

async function main() {
  const argv = process.argv.slice(2);
  if (wantsHelp(argv)) printHelp(HELP);
  if (argv.length) usageError('demo', `unexpected argument "${argv[0]}" (the demo takes no options; see the environment variables)`, USAGE);
  const { premium, budget, key, adminKey, config: file } = await startDemoProviders();
  const config = parseConfig({
    ...file,
    server: {
      ...file.server,
      port: Number(process.env.PORT ?? file.server.port),
      metrics_port: Number(process.env.METRICS_PORT ?? file.server.metrics_port),
      log_level: process.env.LOG_LEVEL ?? file.server.log_level,
    },
    redis: process.env.REDIS_URL ? { url: process.env.REDIS_URL } : undefined,
    // Keys and teams at runtime and the spend ledger (docs/keys.md): PGlite in this process unless DATABASE_URL is set.
    store: process.env.DATABASE_URL ? { postgres_url: process.env.DATABASE_URL } : process.env.DEMO_STORE === 'off' ? undefined : { embedded: true },
  });
  if (config.store) process.stdout.write('starting the key store and spend ledger (embedded PostgreSQL takes a few seconds)...\n');

  const gw = await startGateway(config);
  const base = gw.url;
  process.stdout.write(`
AI gateway demo is running (Ctrl-C to stop)
  gateway:   ${base}/v1        metrics: ${gw.metricsUrl}
  providers: premium (slow, pricey) ${premium.url}
             budget  (cheap, flaky: ~1 in 4 requests fails) ${budget.url}
  redis:     ${process.env.REDIS_URL ?? 'none (in-memory limits and spend; set REDIS_URL to use Redis)'}
  client key: ${key}
  admin key:  ${adminKey}
  operator page: ${base}/ui (spend, budgets, provider health; paste the admin key)

Try it:

  curl -s ${base}/v1/chat/completions \\
    -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" \\
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}]}' -i

  curl -sN ${base}/v1/chat/completions \\
    -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" \\
    -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Stream, please"}]}'

  # "fast" routes by measured latency: after one request each, budget (~40 ms) beats premium (~300 ms)
  curl -s ${base}/v1/chat/completions -o /dev/null -D - \
    -H "Authorization: Bearer ${key}" -H "Content-Type: application/json" \
    -d '{"model":"fast","messages":[{"role":"user","content":"Quick!"}]}'

  curl -s ${base}/v1/models -H "Authorization: Bearer ${key}"
  curl -s ${base}/v1/gateway/providers -H "Authorization: Bearer ${adminKey}"
  curl -s ${base}/v1/gateway/spend -H "Authorization: Bearer ${adminKey}"
  curl -s ${gw.metricsUrl} | grep aigw_
${
  config.store
    ? `
  # keys and teams at runtime (docs/keys.md)
  AIGW_URL=${base} AIGW_ADMIN_KEY=${adminKey} npm run admin -- keys create --team demo --budget-daily 5
  AIGW_URL=${base} AIGW_ADMIN_KEY=${adminKey} npm run admin -- keys list
`
    : ''
}
OpenAI SDK (Node):

  import OpenAI from 'openai';
  const client = new OpenAI({ baseURL: '${base}/v1', apiKey: '${key}' });
  const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello!' }] });
  console.log(r.choices[0].message.content);

OpenAI SDK (Python):

  from openai import OpenAI
  client = OpenAI(base_url="${base}/v1", api_key="${key}")

Watch the x-gateway-provider and x-gateway-attempts headers: the budget provider fails
now and then and the gateway retries or fails over to premium before you notice.
`);

  const stop = async () => {
    process.stdout.write('\nstopping...\n');
    await gw.shutdown();
    await premium.close();
    await budget.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: Error) => {
  process.stderr.write(`demo failed: ${err.message}\n`);
  process.exit(1);
});
