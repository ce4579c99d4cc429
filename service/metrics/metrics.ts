/**
 * Every metric the gateway exports, named once. Labels are bounded: provider, model and
 * team/project come from config (unknown model names never become labels), status is a class.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export function createMetrics(registry: Registry = new Registry(), opts: { defaultMetrics?: boolean } = {}) {
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'aigw_' });
  const r = [registry];
  return {
    registry,
    // --- requests, as the client saw them
    requests: new Counter({ name: 'aigw_requests_total', help: 'Client requests by endpoint, provider that served them, model, team, project and status class', labelNames: ['endpoint', 'provider', 'model', 'team', 'project', 'status_class'] as const, registers: r }),
    requestDuration: new Histogram({ name: 'aigw_request_duration_seconds', help: 'Time from request received to response finished', labelNames: ['endpoint', 'provider', 'model', 'stream'] as const, buckets: LATENCY_BUCKETS, registers: r }),
    streamTtfb: new Histogram({ name: 'aigw_stream_time_to_first_byte_seconds', help: 'Time from request received to the first streamed byte sent to the client', labelNames: ['provider', 'model'] as const, buckets: LATENCY_BUCKETS, registers: r }),
    inflight: new Gauge({ name: 'aigw_inflight_requests', help: 'Requests being served right now', registers: r }),
    clientDisconnects: new Counter({ name: 'aigw_client_disconnects_total', help: 'Requests whose client went away before the response finished (upstream aborted)', labelNames: ['endpoint'] as const, registers: r }),
    // --- usage and cost
    tokens: new Counter({ name: 'aigw_tokens_total', help: 'Tokens by direction (input/output)', labelNames: ['provider', 'model', 'team', 'project', 'direction'] as const, registers: r }),
    cost: new Counter({ name: 'aigw_cost_usd_total', help: 'Spend in USD at configured provider prices', labelNames: ['provider', 'model', 'team', 'project', 'estimated'] as const, registers: r }),
    savings: new Counter({ name: 'aigw_savings_usd_total', help: 'USD saved against the model list price (routing) or by serving from cache', labelNames: ['model', 'team', 'project', 'reason'] as const, registers: r }),
    // --- upstream behaviour
    upstreamAttempts: new Counter({ name: 'aigw_upstream_attempts_total', help: 'Attempts sent to providers, by outcome', labelNames: ['provider', 'model', 'outcome'] as const, registers: r }),
    upstreamLatency: new Histogram({ name: 'aigw_upstream_latency_seconds', help: 'Provider latency per attempt: time to first byte (ttfb) and total', labelNames: ['provider', 'model', 'phase'] as const, buckets: LATENCY_BUCKETS, registers: r }),
    retries: new Counter({ name: 'aigw_retries_total', help: 'Retries of the same provider', labelNames: ['provider', 'model', 'reason'] as const, registers: r }),
    failovers: new Counter({ name: 'aigw_failovers_total', help: 'Moves from one provider to the next candidate', labelNames: ['from_provider', 'to_provider', 'model', 'reason'] as const, registers: r }),
    streamInterruptions: new Counter({ name: 'aigw_stream_interruptions_total', help: 'Streams cut by the upstream after the first byte reached the client', labelNames: ['provider', 'model'] as const, registers: r }),
    circuitState: new Gauge({ name: 'aigw_circuit_state', help: 'Circuit breaker state per provider and model: 0 closed, 1 half-open, 2 open', labelNames: ['provider', 'model'] as const, registers: r }),
    circuitTransitions: new Counter({ name: 'aigw_circuit_transitions_total', help: 'Circuit breaker state changes', labelNames: ['provider', 'model', 'from', 'to'] as const, registers: r }),
    providerUnhealthy: new Gauge({ name: 'aigw_provider_unhealthy', help: '1 when a provider answered 401/403 (bad provider key) until it answers successfully', labelNames: ['provider'] as const, registers: r }),
    // --- tenancy
    rateLimited: new Counter({ name: 'aigw_rate_limited_total', help: 'Requests refused by a rate limit', labelNames: ['scope', 'kind'] as const, registers: r }),
    authFailures: new Counter({ name: 'aigw_auth_failures_total', help: 'Requests refused for a missing or unknown key', labelNames: ['reason'] as const, registers: r }),
    budgetRejections: new Counter({ name: 'aigw_budget_rejections_total', help: 'Requests refused because a team budget is spent', labelNames: ['team', 'period'] as const, registers: r }),
    budgetUsedRatio: new Gauge({ name: 'aigw_budget_used_ratio', help: 'Fraction of the team budget spent in the current period', labelNames: ['team', 'period'] as const, registers: r }),
    budgetAlert: new Gauge({ name: 'aigw_budget_alert', help: '1 when a team has spent more than its alert threshold of a budget', labelNames: ['team', 'period'] as const, registers: r }),
    // --- cache and redis
    cacheRequests: new Counter({ name: 'aigw_cache_requests_total', help: 'Response cache lookups by result (hit, miss, bypass, error)', labelNames: ['result'] as const, registers: r }),
    redisUp: new Gauge({ name: 'aigw_redis_up', help: '1 when the gateway reaches Redis', registers: r }),
    redisErrors: new Counter({ name: 'aigw_redis_errors_total', help: 'Redis calls that failed or timed out (the gateway fell back)', labelNames: ['operation'] as const, registers: r }),
    spendBuffered: new Gauge({ name: 'aigw_spend_buffered_entries', help: 'Spend entries held in memory while Redis is unreachable', registers: r }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

export const statusClass = (status: number): string => `${Math.floor(status / 100)}xx`;
