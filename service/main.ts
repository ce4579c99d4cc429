/**
 * The gateway process: the only place that reads the environment and argv.
 *   node dist/service/main.js --config config/gateway.yaml    (or GATEWAY_CONFIG=FILE)
 * SIGTERM/SIGINT drain in-flight requests and streams, flush spend, and exit 0.
 */
import { loadConfigFile } from './config/load';
import { ConfigError } from './config/schema';
import { startGateway } from './server';

function configPath(argv: string[], env: NodeJS.ProcessEnv): string | undefined {
  const i = argv.indexOf('--config');
  if (i >= 0) return argv[i + 1];
  const eq = argv.find((a) => a.startsWith('--config='));
  return eq ? eq.slice('--config='.length) : env.GATEWAY_CONFIG;
}

async function main(): Promise<void> {
  const file = configPath(process.argv.slice(2), process.env);
  if (!file) {
    process.stderr.write('usage: ai-gateway --config FILE   (or set GATEWAY_CONFIG)\n');
    process.exit(2);
  }
  let config;
  try {
    config = loadConfigFile(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const running = await startGateway(config, { env: process.env });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      running.logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    running.logger.info({ signal }, 'signal received');
    running.shutdown().then(
      () => process.exit(0),
      (err: Error) => {
        running.logger.error({ err: err.message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

main().catch((err: Error) => {
  process.stderr.write(`gateway failed to start: ${err.message}\n`);
  process.exit(1);
});
