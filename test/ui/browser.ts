/**
 * Debian's chromium driven by playwright-core, for the operator page's tests. `launchChromium()`
 * resolves to a reason instead of a browser when none is installed, so the test can skip saying why.
 */
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Headless, no sandbox (CI runs as root), and nothing that phones home while the test runs. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export async function launchChromium(): Promise<{ browser?: Browser; reason?: string }> {
  if (!existsSync(CHROMIUM)) return { reason: `no browser at ${CHROMIUM} (apt-get install -y chromium, as .ci/run does; or set CHROMIUM_PATH)` };
  const { chromium } = await import('playwright-core');
  // A browser that is installed but does not start is a failure, not a skip.
  return { browser: await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true }) };
}
