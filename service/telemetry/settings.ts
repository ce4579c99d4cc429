/**
 * Whether the gateway traces, decided once at startup from the standard OpenTelemetry
 * variables and the gateway config (pure; unit-tested by a table).
 *
 * The SDK itself reads everything else (OTEL_EXPORTER_OTLP_*ENDPOINT, _HEADERS, _TIMEOUT,
 * _COMPRESSION, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER/_ARG,
 * OTEL_BSP_*, span limits). This only answers what the trace SDK leaves to its caller:
 * on or off, and which exporter (`OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL`,
 * which @opentelemetry/sdk-node would read and the trace SDK does not).
 */

export type Protocol = 'http/protobuf' | 'http/json';

export type TracingSettings =
  | { enabled: false; /** Why tracing stays off although something asked for it (logged at startup). */ problem?: string }
  | {
      enabled: true;
      exporter: 'otlp' | 'console';
      protocol: Protocol;
      /** Traces URL from the gateway config; only when no OTEL_EXPORTER_OTLP_*ENDPOINT is set (those win). */
      url?: string;
    };

export interface TelemetryConfig {
  /** OTLP/HTTP base URL of a collector (as OTEL_EXPORTER_OTLP_ENDPOINT: /v1/traces is appended). */
  otlp_endpoint?: string;
}

type Env = Record<string, string | undefined>;

const set = (v: string | undefined): v is string => v !== undefined && v.trim() !== '';

export function tracingSettings(env: Env, config: TelemetryConfig = {}): TracingSettings {
  if (set(env.OTEL_SDK_DISABLED) && env.OTEL_SDK_DISABLED.trim().toLowerCase() === 'true') return { enabled: false };
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (exporters.includes('none')) return { enabled: false };
  const envEndpoint = set(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) || set(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (!exporters.length && !envEndpoint && !config.otlp_endpoint) return { enabled: false };

  const unsupported = exporters.filter((e) => e !== 'otlp' && e !== 'console');
  if (unsupported.length) return { enabled: false, problem: `OTEL_TRACES_EXPORTER "${unsupported.join(',')}" is not supported (use otlp, console or none): tracing is off` };
  const exporter = exporters[0] === 'console' ? 'console' : 'otlp';

  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim().toLowerCase();
  if (exporter === 'otlp' && protocol !== 'http/protobuf' && protocol !== 'http/json') {
    return { enabled: false, problem: `OTLP protocol "${protocol}" is not supported (use http/protobuf or http/json): tracing is off` };
  }
  const url = !envEndpoint && config.otlp_endpoint ? `${config.otlp_endpoint.replace(/\/+$/, '')}/v1/traces` : undefined;
  return { enabled: true, exporter, protocol: exporter === 'otlp' ? (protocol as Protocol) : 'http/protobuf', ...(url ? { url } : {}) };
}
