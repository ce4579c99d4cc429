/**
 * The start of the gateway's tracing (its contract is in trace-types.ts). The request path only sees these small
 * interfaces: with tracing off there is no Tracing object at all (every hook is one
 * `undefined` check) and the OpenTelemetry SDK is never loaded.
 *
 *   server span  one per /v1 request, continuing the client's W3C traceparent
 *   client span  one per upstream attempt, children of the server span (retries and
 *                failovers are siblings); its traceparent goes to the provider
 */
import type { Logger } from 'pino';
import type { TracingSettings } from './settings';
import type { Tracing } from './trace-types';

/** The Tracing the settings ask for, or undefined (tracing off: the SDK is not even loaded). */
export function startTracing(settings: TracingSettings, logger: Logger): Tracing | undefined {
  if (!settings.enabled) {
    if (settings.problem) logger.warn(settings.problem);
    return undefined;
  }
  // A plain require, loaded here and only here: the same under tsc's CommonJS output and tsx's hooks.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createOtelTracing } = require('./otel') as typeof import('./otel');
  return createOtelTracing(settings, logger);
}
