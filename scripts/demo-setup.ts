/**
 * The demo's two simulated providers and its gateway config (config/demo.yaml with the
 * providers' URLs and fresh key hashes filled in): used by `npm run demo` and by the test that
 * checks the demo behaves as it says.
 */
import { join } from 'node:path';
import { loadConfigFile } from '../service/config/load';
import type { GatewayConfig } from '../service/config/schema';
import { generateKey, hashKey } from '../service/tenancy/keys';
import { FakeUpstream, startFakeUpstream } from '../test/helpers/fake-upstream';

export interface DemoSetup {
  premium: FakeUpstream;
  budget: FakeUpstream;
  key: string;
  adminKey: string;
  /** config/demo.yaml, filled in, before server overrides. */
  config: GatewayConfig;
}

/** `random` decides when "budget" fails (about 1 request in 4). */
export async function startDemoProviders(random: () => number = Math.random): Promise<DemoSetup> {
  // The simulated providers: demo code only, never part of the gateway.
  const premium = await startFakeUpstream('premium', (req) =>
    req.body.stream ? { kind: 'stream', delayMs: 60, firstByteDelayMs: 250 } : { kind: 'ok', delayMs: 300, content: 'Hello from the premium provider.' },
  );
  const budget = await startFakeUpstream('budget', (req) => {
    if (random() < 0.25) return { kind: 'status', status: 503 };
    return req.body.stream ? { kind: 'stream', delayMs: 30 } : { kind: 'ok', delayMs: 40, content: 'Hello from the budget provider.' };
  });
  const key = generateKey();
  const adminKey = generateKey();
  const env = {
    ...process.env,
    DEMO_KEY_HASH: hashKey(key),
    DEMO_ADMIN_KEY_HASH: hashKey(adminKey),
    DEMO_PREMIUM_URL: premium.url,
    DEMO_BUDGET_URL: budget.url,
  };
  const config = loadConfigFile(join(__dirname, '../config/demo.yaml'), env);
  return { premium, budget, key, adminKey, config };
}
