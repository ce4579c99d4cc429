/** Everything a request handler needs, built once by createApp. No globals. */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/schema';
import type { Metrics } from '../metrics/metrics';
import type { Catalog } from '../routing/catalog';
import type { CircuitBreakers } from '../routing/circuit-breaker';
import type { StatsTracker } from '../routing/provider-stats';
import type { ResponseCache, Tenancy } from '../tenancy/contracts';
import type { ObjectRegistry } from '../tenancy/objects';
import type { Executor } from '../upstream/executor';
import type { BackgroundResponses } from './background';

export interface GatewayContext {
  config: GatewayConfig;
  logger: Logger;
  metrics: Metrics;
  catalog: Catalog;
  breakers: CircuitBreakers;
  stats: StatsTracker;
  executor: Executor;
  tenancy: Tenancy;
  cache: ResponseCache;
  /** Owners of provider objects (stored responses, files...): team and provider, by id. */
  objects: ObjectRegistry;
  /** Background responses whose settlement waits for their usage. */
  background: BackgroundResponses;
  now: () => number;
  random: () => number;
}
