/**
 * The one gateway config schema. The gateway validates its YAML file with it at start,
 * and the Pulumi program validates the config it renders into the ConfigMap with it,
 * so a stack can never deploy a config the gateway would reject.
 *
 * Units are in the key names (`_ms`, `_seconds`, `_usd`, `_per_million`).
 * The original design's settings live here as:
 *   timeout             -> routing.timeout_ms (overall request deadline) and providers[].timeout_ms
 *   max_retries         -> routing.max_retries
 *   retry_delay         -> routing.retry_delay_ms
 *   strategy            -> routing.strategy (and models.<name>.strategy per model)
 *   fallback            -> routing.fallback
 *   rate_limit.*        -> rate_limit.requests_per_minute / burst / tokens_per_minute
 *   cache.enabled / ttl -> cache.enabled / cache.ttl_seconds
 *   redis host and port -> redis.host / redis.port (or redis.url)
 */
import { z } from 'zod';
import { ENDPOINT_NAMES } from '../core/endpoints';
import { OBJECT_COLLECTIONS } from '../core/passthrough-paths';
import { PROVIDER_FACTS, PROVIDER_TYPES } from '../core/provider-types';

export const STRATEGIES = ['cost-optimal', 'latency-optimal', 'balanced', 'weighted', 'priority'] as const;
export type StrategyName = (typeof STRATEGIES)[number];

const name = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/, 'must be letters, digits and . _ : / - (starting with a letter or digit)');

/** A DNS label (also a valid Kubernetes name and label value); the Pulumi stack config uses it too. */
export const dnsLabel = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'must be a DNS label: lower-case letters, digits and -');
const labelSafe = dnsLabel;

const sha256Hash = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:" followed by 64 lower-case hex digits (see `npm run keygen`)');

const price = z.number().nonnegative();

export const rateLimitSchema = z
  .object({
    requests_per_minute: z.number().int().positive().optional(),
    /** Extra requests allowed above the per-minute rate in a short burst. */
    burst: z.number().int().nonnegative().default(0),
    tokens_per_minute: z.number().int().positive().optional(),
  })
  .strict();

const scopeValue = z.union([z.literal('*'), name]).optional();

/** Windows a limit rule counts in (fixed windows, started by the first request in them). */
export const LIMIT_WINDOWS = { second: 1, minute: 60, hour: 3600, day: 86400 } as const;
export const LIMIT_RESOURCES = ['requests', 'tokens', 'usd'] as const;
export const LIMIT_DIMENSIONS = ['key', 'team', 'project', 'model', 'provider'] as const;

/**
 * One limit rule (limits as data, after TensorZero's rate_limiting rules): `capacity` of a resource
 * per window, for a scope. Each scope dimension names one value ("red": only that team), or "*":
 * one counter for each value seen (each team its own); a dimension left out is not part of the
 * counter (the total over it). A `provider` scope stands alone and counts requests (it is checked
 * per attempt, once the provider is chosen).
 */
export const limitRuleSchema = z
  .object({
    resource: z.enum(LIMIT_RESOURCES),
    window: z.enum(Object.keys(LIMIT_WINDOWS) as [keyof typeof LIMIT_WINDOWS]).default('minute'),
    /** Requests, tokens (prompt + completion) or USD per window. */
    capacity: z.number().positive(),
    /** Extra allowance per ten windows, used only once a window is spent. */
    burst: z.number().nonnegative().default(0),
    scope: z
      .object({ key: scopeValue, team: scopeValue, project: scopeValue, model: scopeValue, provider: scopeValue })
      .strict()
      .refine((s) => Object.values(s).some((v) => v !== undefined), 'name at least one of key, team, project, model, provider (a value, or "*" for each)'),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.resource !== 'usd' && !Number.isInteger(r.capacity)) ctx.addIssue({ code: 'custom', path: ['capacity'], message: `must be a whole number of ${r.resource}` });
    if (r.resource === 'requests' && !Number.isInteger(r.burst)) ctx.addIssue({ code: 'custom', path: ['burst'], message: 'must be a whole number of requests' });
    if (r.scope.provider !== undefined && (r.resource !== 'requests' || Object.values(r.scope).filter((v) => v !== undefined).length > 1)) {
      ctx.addIssue({ code: 'custom', path: ['scope', 'provider'], message: 'a provider scope stands alone and limits requests (it is checked per attempt, before the call)' });
    }
  });

export const budgetSchema = z
  .object({
    daily_usd: z.number().positive().optional(),
    monthly_usd: z.number().positive().optional(),
    /** Fraction of a budget at which the alert metric fires (0..1). */
    alert_threshold: z.number().gt(0).lte(1).default(0.8),
  })
  .strict();

/** How a stream cut after its first byte is continued on this model: a trailing assistant message, a request to continue, or not at all. */
export const CONTINUATION_MODES = ['prefill', 'instruction', 'none'] as const;

export const providerModelSchema = z
  .object({
    /** The public model name clients send (or a name aliases point at). */
    name,
    /** The provider's own name for the model, when it differs (for Azure: the deployment name). */
    upstream_name: z.string().min(1).max(256).optional(),
    input_per_million: price.default(0),
    /** Price of prompt tokens served from the provider's prompt cache (usage cached_tokens); defaults to input_per_million. */
    cached_input_per_million: price.optional(),
    output_per_million: price.default(0),
    /** Which endpoints the model serves. */
    kind: z.enum(['chat', 'completion', 'embedding']).default('chat'),
    /** The model's context window in tokens: a request too long for one target fails over only to targets with a larger one. */
    context_window: z.number().int().positive().optional(),
    /** How this model continues another provider's cut stream (default: prefill for anthropic and bedrock, instruction for openai and azure). */
    continuation: z.enum(CONTINUATION_MODES).optional(),
    /**
     * The model has no prices, knowingly: its requests cost 0 and are counted in the spend
     * report's unpriced_requests, and cost-optimal never prefers it as free. Without it, a model
     * with no prices is refused when a cost strategy or a budget could use it (checkUnpriced).
     */
    unpriced: z.boolean().default(false),
    /** Output tokens a request that sets no max tokens reserves against budgets at admission (default routing.reserve_output_tokens). */
    reserve_output_tokens: z.number().int().positive().optional(),
  })
  .strict();

/** Fields every provider has, whatever its type. */
const providerCommon = {
  name: labelSafe,
  /** e.g. https://api.openai.com/v1 ; for Azure: https://RESOURCE.openai.azure.com ; for Anthropic: https://api.anthropic.com */
  base_url: z.url({ protocol: /^https?$/ }),
  /** Per-attempt timeout (connect + time to first byte + body for non-streaming). */
  timeout_ms: z.number().int().positive().default(30_000),
  max_connections: z.number().int().positive().default(256),
  /** Traffic share under the `weighted` strategy, when a model does not set its own weights. */
  weight: z.number().nonnegative().default(1),
  /** Order under the `priority` strategy (lower first). */
  priority: z.number().int().default(100),
  /** Protects the provider's quota, across all clients. */
  rate_limit: z.object({ requests_per_minute: z.number().int().positive() }).strict().optional(),
  /** Routed endpoints this provider serves (default: openai all of them, azure all but responses). */
  endpoints: z.array(z.enum(ENDPOINT_NAMES)).min(1).optional(),
  models: z.array(providerModelSchema).min(1),
};

/**
 * A provider, validated by the branch of its `type` (default openai): each type's own fields
 * are known, required or refused by its branch, never by checks on a flat object.
 */
export const providerSchema = z.discriminatedUnion('type', [
  z.object({ ...providerCommon, type: z.literal('openai').default('openai'), api_key: z.string().optional() }).strict(),
  z
    .object({
      ...providerCommon,
      type: z.literal('azure'),
      api_key: z.string().optional(),
      /** The api-version query parameter of every call. */
      api_version: z.string({ error: 'required for type azure' }).min(1, 'required for type azure'),
    })
    .strict(),
  z
    .object({
      ...providerCommon,
      type: z.literal('anthropic'),
      api_key: z.string().optional(),
      /** The anthropic-version header (default 2023-06-01). */
      anthropic_version: z.string().min(1).optional(),
      /** max_tokens sent when a request sets none (Anthropic requires it; default 4096). */
      default_max_tokens: z.number().int().positive().optional(),
    })
    .strict(),
  z
    .object({
      ...providerCommon,
      type: z.literal('bedrock'),
      /** The AWS region the calls are signed for (SigV4); base_url is the region's bedrock-runtime endpoint. Credentials come from the AWS credential chain, never an api_key. */
      region: z.string({ error: 'required for type bedrock' }).regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'must be an AWS region, e.g. us-east-1'),
    })
    .strict(),
]);

export const modelRouteSchema = z
  .object({
    /** Strategy for this model (defaults to routing.strategy). */
    strategy: z.enum(STRATEGIES).optional(),
    /** Makes this name an alias: the providers and their model names it maps to. */
    targets: z
      .array(z.object({ provider: labelSafe, model: name }).strict())
      .min(1)
      .optional(),
    /** Traffic split for `weighted`, by provider name (any scale; 95/5 is a 95%/5% split). */
    weights: z.record(z.string(), z.number().nonnegative()).optional(),
    /** Provider order for `priority`. */
    order: z.array(labelSafe).optional(),
    /** The price a team would pay calling the model's vendor directly, for the savings report. */
    list_price: z.object({ input_per_million: price, output_per_million: price }).strict().optional(),
  })
  .strict();

const HTTP_METHODS = ['GET', 'POST', 'DELETE'] as const;

/** One path the pass-through opens (closed by default): admitted, counted and priced like inference. */
export const passthroughEntrySchema = z
  .object({
    /** An exact path under /v1, e.g. /v1/moderations; for an object collection (/v1/files) its objects' paths too. */
    path: z
      .string()
      .regex(/^\/v1(\/[a-z0-9_.-]+)+$/, 'must be a path under /v1 of lower-case segments, e.g. /v1/moderations')
      .refine((p) => !p.split('/').some((seg) => seg === '.' || seg === '..'), 'must not contain . or .. segments'),
    methods: z.array(z.enum(HTTP_METHODS)).min(1),
    /** The openai-type provider it goes to (default: the first one). */
    provider: labelSafe.optional(),
    /** Largest request body (uploads); default server.body_limit_bytes. */
    body_limit_bytes: z.number().int().positive().optional(),
    /** How long an object created here stays owned by its team when the answer has no expires_at. */
    object_ttl_seconds: z
      .number()
      .int()
      .positive()
      .default(30 * 86400),
    /** Prices for answers: from their usage (per million tokens), else per request or per generated image. */
    price: z.object({ input_per_million: price.optional(), output_per_million: price.optional(), per_request_usd: price.optional(), per_image_usd: price.optional() }).strict().optional(),
  })
  .strict();

export const apiKeySchema = z
  .object({
    /** sha256 of the key; the key itself never appears in config. */
    hash: sha256Hash,
    /** A readable name for logs and metrics (never the key). */
    name: labelSafe,
    team: labelSafe,
    project: labelSafe.default('default'),
    rate_limit: rateLimitSchema.optional(),
  })
  .strict();

export const teamSchema = z
  .object({
    name: labelSafe,
    budget: budgetSchema.optional(),
    rate_limit: rateLimitSchema.optional(),
  })
  .strict();

/** One Redis connection: `redis`, and `cache.redis` when the cache has a server of its own. */
export const redisConnectionSchema = z
  .object({
    url: z.string().optional(),
    host: z.string().optional(),
    port: z.number().int().min(1).max(65535).default(6379),
    password: z.string().optional(),
    key_prefix: z.string().default('aigw:'),
    /** Every Redis call is bounded by this; past it the gateway falls back (memory limits, cache bypass, buffered spend). */
    command_timeout_ms: z.number().int().positive().default(100),
    /** Redis Sentinel: ask these for the current master of `sentinel_name` (host/port/url are then unused). */
    sentinels: z
      .array(z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535).default(26379) }).strict())
      .min(1)
      .optional(),
    sentinel_name: z.string().min(1).optional(),
    /**
     * Redis Cluster: url/host name one node (or a managed cluster's configuration endpoint); the
     * client discovers the others and follows slot moves and failovers. Every key a request
     * touches carries its team's (or its limit counter's) hash tag, so each script stays in one slot.
     */
    cluster: z.boolean().default(false),
    /**
     * TLS to Redis: a `rediss://` url enables it by itself; this block enables it for host/port
     * too. ca_file: PEM of the CA(s) that signed the server's certificate (default: Node's CAs);
     * servername: the name to check the certificate against (default: the host).
     */
    tls: z
      .object({ ca_file: z.string().min(1).optional(), reject_unauthorized: z.boolean().default(true), servername: z.string().min(1).optional() })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (!r.url && !r.host && !r.sentinels) ctx.addIssue({ code: 'custom', path: [], message: 'set url, host or sentinels (or remove the block to run without Redis)' });
    if (r.cluster && r.sentinels) ctx.addIssue({ code: 'custom', path: ['cluster'], message: 'cluster and sentinels do not go together (a cluster fails over by itself)' });
    if (!r.sentinels !== !r.sentinel_name) ctx.addIssue({ code: 'custom', path: ['sentinel_name'], message: 'sentinels and sentinel_name go together' });
  });

const configBase = z
  .object({
    server: z
      .object({
        host: z.string().default('0.0.0.0'),
        port: z.number().int().min(0).max(65535).default(8080),
        metrics_port: z.number().int().min(0).max(65535).default(9090),
        metrics_host: z.string().optional(),
        body_limit_bytes: z.number().int().positive().default(1_048_576),
        /** Seconds a client may take to send its headers (slowloris guard). */
        headers_timeout_ms: z.number().int().positive().default(15_000),
        /** How long SIGTERM waits for in-flight requests and streams. */
        shutdown_grace_ms: z.number().int().positive().default(30_000),
        log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .prefault({}),
    auth: z
      .object({
        /** `none` is for local demos only; the production stack refuses it. */
        mode: z.enum(['keys', 'none']).default('keys'),
        keys: z.array(apiKeySchema).default([]),
        /** Hashes of keys allowed on /v1/gateway/* admin endpoints (spend, providers). */
        admin_key_hashes: z.array(sha256Hash).default([]),
      })
      .strict()
      .prefault({}),
    teams: z.array(teamSchema).default([]),
    providers: z.array(providerSchema).min(1),
    models: z.record(name, modelRouteSchema).default({}),
    routing: z
      .object({
        strategy: z.enum(STRATEGIES).default('cost-optimal'),
        /** Try the next provider in the plan when one fails. */
        fallback: z.boolean().default(true),
        /** Retries of one provider before failing over (0 = one attempt each). */
        max_retries: z.number().int().min(0).max(10).default(2),
        /** Base of the exponential backoff (full jitter). */
        retry_delay_ms: z.number().int().min(0).default(200),
        max_retry_delay_ms: z.number().int().min(0).default(5_000),
        /** Longest Retry-After the gateway will wait inside one request. */
        retry_after_cap_ms: z.number().int().min(0).default(10_000),
        /**
         * POST /v1/responses with background: true: `settle` (the gateway polls the provider from
         * background_poll_ms on, backing off to 30 s, and settles the request on the usage when the
         * response finishes) or `refuse` (400 background_not_allowed).
         */
        background_responses: z.enum(['settle', 'refuse']).default('settle'),
        background_poll_ms: z.number().int().positive().default(2_000),
        /**
         * Output tokens a request that sets no max tokens (max_tokens, max_completion_tokens,
         * max_output_tokens) reserves against budgets at admission, unless its model sets
         * providers[].models[].reserve_output_tokens.
         */
        reserve_output_tokens: z.number().int().positive().default(4096),
        /** Continue a stream cut, stalled or broken after its first byte on the next candidate (off: end it with the error event). */
        continuation: z.enum(['on', 'off']).default('on'),
        /** Overall deadline for one request until its answer starts, retries and failovers included. */
        timeout_ms: z.number().int().positive().default(120_000),
        /**
         * Deadlines that match what users wait for. headers_ms and first_token_ms apply while
         * another candidate remains in the plan: a provider that misses them is failed over at
         * once (not retried); the last candidate gets its full providers[].timeout_ms.
         */
        deadlines: z
          .object({
            /** Connect and response headers of one attempt. */
            headers_ms: z.number().int().positive().default(10_000),
            /** Request sent to a stream's first event (its first token). */
            first_token_ms: z.number().int().positive().default(15_000),
            /** Longest silence between two events of a stream once it has started (a stall ends it). */
            between_events_ms: z.number().int().positive().default(30_000),
            /** Longest a stream may run after its first event (an endless stream ends with the clean error event). */
            stream_ms: z.number().int().positive().default(600_000),
          })
          .strict()
          .prefault({}),
        /** Weights of the `balanced` score. */
        balanced_weights: z
          .object({ price: z.number().min(0).default(1), latency: z.number().min(0).default(1), errors: z.number().min(0).default(2) })
          .strict()
          .prefault({}),
        /**
         * latency-optimal keeps measuring the providers it does not prefer: a never-tried one goes
         * first; one not heard from for `reprobe_after_ms` goes first once; and a `share` of requests
         * goes first to a random other candidate (its fallbacks stay in latency order).
         */
        exploration: z
          .object({ share: z.number().min(0).max(1).default(0.05), reprobe_after_ms: z.number().int().positive().default(60_000) })
          .strict()
          .prefault({}),
        /** Smoothing of the latency and error moving averages (0..1, higher = faster reaction). */
        ewma_alpha: z.number().gt(0).lte(1).default(0.2),
        /** Send clients the provider's model name instead of the one they asked for (alias, upstream_name). */
        expose_upstream_model: z.boolean().default(false),
        circuit_breaker: z
          .object({
            consecutive_failures: z.number().int().positive().default(5),
            error_rate_threshold: z.number().gt(0).lte(1).default(0.5),
            window_ms: z.number().int().positive().default(60_000),
            min_requests: z.number().int().positive().default(20),
            cooldown_ms: z.number().int().positive().default(30_000),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** Paths beyond the routed endpoints that the gateway relays; none by default. */
    passthrough: z.array(passthroughEntrySchema).default([]),
    /** Limit rules beyond rate_limit (which stays the per-key default): per model, per team x model, per project... */
    limits: z.array(limitRuleSchema).default([]),
    rate_limit: rateLimitSchema
      .extend({
        /** Replicas sharing the limit; when Redis is down each replica enforces limit / replicas in memory. */
        expected_replicas: z.number().int().positive().default(1),
      })
      .prefault({}),
    cache: z
      .object({
        enabled: z.boolean().default(false),
        ttl_seconds: z.number().int().positive().default(3600),
        /**
         * A Redis of its own for the cache (run it with maxmemory and allkeys-lru): Redis evicts per
         * server, and limits, budgets and spend all carry TTLs, so sharing one server lets a busy cache
         * evict them. Without it the cache uses `redis`.
         */
        redis: redisConnectionSchema.optional(),
      })
      .strict()
      .prefault({}),
    redis: redisConnectionSchema.optional(),
    /**
     * Keys and teams issued at runtime, the spend ledger and the audit log (docs/keys.md). On when
     * postgres_url (or the DATABASE_URL environment variable, which wins) is set, or with
     * embedded: true (PGlite in the process, for the demo and single-replica trials).
     */
    store: z
      .object({
        postgres_url: z.string().min(1).optional(),
        embedded: z.boolean().default(false),
        /** Where the embedded store keeps its data (default: memory only, gone at exit). */
        embedded_dir: z.string().min(1).optional(),
        /** Spend rows held in memory while PostgreSQL is unreachable; when full, requests get 503. */
        spool_max_rows: z.number().int().positive().default(100_000),
        /** How long a rotated key keeps working unless the rotate call says otherwise. */
        rotate_grace_seconds: z
          .number()
          .int()
          .min(0)
          .max(30 * 86400)
          .default(3600),
      })
      .strict()
      .optional(),
    telemetry: z
      .object({
        /**
         * OTLP/HTTP base URL of a collector for traces (the gateway appends /v1/traces). The standard
         * OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT variables win over it.
         */
        otlp_endpoint: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict();

type ParsedConfig = z.output<typeof configBase>;
type ProviderMap = Map<string, ParsedConfig['providers'][number]>;

/** Provider names unique, endpoints within the type's, model names unique per provider. */
function checkProviders(cfg: ParsedConfig, providers: ProviderMap, ctx: z.RefinementCtx): void {
  if (providers.size !== cfg.providers.length) ctx.addIssue({ code: 'custom', path: ['providers'], message: 'provider names must be unique' });
  cfg.providers.forEach((p, i) => {
    const supported = PROVIDER_FACTS[p.type].supportedEndpoints;
    for (const e of p.endpoints ?? []) {
      if (!supported.includes(e)) ctx.addIssue({ code: 'custom', path: ['providers', i, 'endpoints'], message: `type ${p.type} does not serve the ${e} endpoint` });
    }
    const seen = new Set<string>();
    p.models.forEach((m, j) => {
      if (seen.has(m.name)) ctx.addIssue({ code: 'custom', path: ['providers', i, 'models', j, 'name'], message: `duplicate model "${m.name}"` });
      seen.add(m.name);
    });
  });
}

/** models.<name>: targets, weights and order name real providers and models; a non-alias name is served by someone. */
function checkModelRoutes(cfg: ParsedConfig, providers: ProviderMap, ctx: z.RefinementCtx): void {
  for (const [modelName, route] of Object.entries(cfg.models)) {
    route.targets?.forEach((t, i) => {
      const p = providers.get(t.provider);
      if (!p) ctx.addIssue({ code: 'custom', path: ['models', modelName, 'targets', i, 'provider'], message: `unknown provider "${t.provider}"` });
      else if (!p.models.some((m) => m.name === t.model))
        ctx.addIssue({ code: 'custom', path: ['models', modelName, 'targets', i, 'model'], message: `provider "${t.provider}" does not serve model "${t.model}"` });
    });
    for (const provider of [...Object.keys(route.weights ?? {}), ...(route.order ?? [])]) {
      if (!providers.has(provider)) ctx.addIssue({ code: 'custom', path: ['models', modelName], message: `unknown provider "${provider}" in weights/order` });
    }
    if (!route.targets && !cfg.providers.some((p) => p.models.some((m) => m.name === modelName))) {
      ctx.addIssue({ code: 'custom', path: ['models', modelName], message: 'no provider serves this model and it has no targets' });
    }
  }
}

/** auth.keys: at least one (or a store), unique hashes and names, teams declared once any is. */
function checkKeys(cfg: ParsedConfig, ctx: z.RefinementCtx): void {
  if (cfg.auth.mode !== 'keys') return;
  const teams = new Set(cfg.teams.map((t) => t.name));
  // With a store block, keys may all be issued at runtime (docs/keys.md).
  if (cfg.auth.keys.length === 0 && !cfg.store) {
    ctx.addIssue({ code: 'custom', path: ['auth', 'keys'], message: 'at least one key is required when auth.mode is "keys" (or a store block, to issue keys through the admin API)' });
  }
  const hashes = new Set<string>();
  const names = new Map<string, number>();
  cfg.auth.keys.forEach((k, i) => {
    if (hashes.has(k.hash)) ctx.addIssue({ code: 'custom', path: ['auth', 'keys', i, 'hash'], message: 'duplicate key hash' });
    hashes.add(k.hash);
    const first = names.get(k.name);
    if (first !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['auth', 'keys', i, 'name'], message: `duplicate key name "${k.name}" (also auth.keys[${first}]); limits are counted per name` });
    } else names.set(k.name, i);
    if (cfg.teams.length > 0 && !teams.has(k.team)) {
      ctx.addIssue({
        code: 'custom',
        path: ['auth', 'keys', i, 'team'],
        message: `unknown team "${k.team}": once any team is declared under teams, every key's team must be one of them (${[...teams].join(', ')}); add \`- name: ${k.team}\` under teams, or set this key's team to a declared one (docs/add-a-team-or-key.md)`,
      });
    }
  });
}

export const configSchema = configBase.superRefine((cfg, ctx) => {
  const providers: ProviderMap = new Map(cfg.providers.map((p) => [p.name, p]));
  checkProviders(cfg, providers, ctx);
  checkModelRoutes(cfg, providers, ctx);
  checkKeys(cfg, ctx);
  checkPassthrough(cfg, providers, ctx);
  checkLimitRules(cfg, ctx);
  checkUnpriced(cfg, ctx);
  if (cfg.redis?.tls && cfg.redis.url && !/^rediss:\/\//i.test(cfg.redis.url)) {
    ctx.addIssue({ code: 'custom', path: ['redis', 'tls'], message: 'redis.url is not rediss://: use a rediss:// url for TLS (or remove redis.tls)' });
  }
});

/** Pass-through entries: never with auth "none", unique paths, an openai-type provider, no path inside an object collection. */
function checkPassthrough(cfg: ParsedConfig, providers: Map<string, ParsedConfig['providers'][number]>, ctx: z.RefinementCtx): void {
  if (cfg.passthrough.length && cfg.auth.mode === 'none') {
    ctx.addIssue({ code: 'custom', path: ['passthrough'], message: 'auth.mode "none" refuses a pass-through allowlist: remove passthrough or set auth.mode to "keys"' });
  }
  const paths = new Set<string>();
  cfg.passthrough.forEach((e, i) => {
    if (paths.has(e.path)) ctx.addIssue({ code: 'custom', path: ['passthrough', i, 'path'], message: `duplicate path "${e.path}"` });
    paths.add(e.path);
    const inside = OBJECT_COLLECTIONS.find((c) => e.path.startsWith(`${c}/`));
    if (inside) ctx.addIssue({ code: 'custom', path: ['passthrough', i, 'path'], message: `is inside the object collection ${inside}: allow ${inside} (its objects stay private to their team)` });
    if (
      e.path === '/v1/responses' ||
      e.path.startsWith('/v1/responses/') ||
      e.path.startsWith('/v1/gateway') ||
      ['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/models'].includes(e.path)
    ) {
      ctx.addIssue({ code: 'custom', path: ['passthrough', i, 'path'], message: 'is served by the gateway itself' });
    }
    const p = e.provider ? providers.get(e.provider) : cfg.providers.find((x) => x.type === 'openai');
    if (!p) ctx.addIssue({ code: 'custom', path: ['passthrough', i, 'provider'], message: e.provider ? `unknown provider "${e.provider}"` : 'no openai-type provider to pass through to' });
    else if (p.type !== 'openai') ctx.addIssue({ code: 'custom', path: ['passthrough', i, 'provider'], message: `provider "${p.name}" is not of type openai` });
  });
}

/** Limit rules: every named team, model and provider exists (a typo would silently limit nothing). */
function checkLimitRules(cfg: ParsedConfig, ctx: z.RefinementCtx): void {
  // Keys and teams may also come from a key store, so only config-defined names are checked.
  const known: Record<string, Set<string> | undefined> = {
    team: cfg.teams.length > 0 ? new Set(cfg.teams.map((t) => t.name)) : undefined,
    model: new Set([...Object.keys(cfg.models), ...cfg.providers.flatMap((p) => p.models.map((m) => m.name))]),
    provider: new Set(cfg.providers.map((p) => p.name)),
  };
  cfg.limits.forEach((rule, i) => {
    for (const [dim, value] of Object.entries(rule.scope)) {
      const names = known[dim];
      if (value === undefined || value === '*' || !names || names.has(value)) continue;
      ctx.addIssue({ code: 'custom', path: ['limits', i, 'scope', dim], message: `unknown ${dim} "${value}"` });
    }
  });
}

/** A model without prices: neither an input nor an output price (both default to 0). */
export const hasNoPrices = (m: { input_per_million: number; output_per_million: number }): boolean => m.input_per_million === 0 && m.output_per_million === 0;

const COST_STRATEGIES: ReadonlySet<string> = new Set(['cost-optimal', 'balanced']);

/**
 * Unpriced means unpriced, not free: a model without prices is refused when a budget (any
 * team's) or a cost strategy (cost-optimal, balanced) routing its name, or an alias to it, could
 * use it, unless it says `unpriced: true`; a model that says so may not also carry prices.
 */
function checkUnpriced(cfg: ParsedConfig, ctx: z.RefinementCtx): void {
  const budgets = cfg.teams.some((t) => t.budget);
  const costRouted = (provider: string, model: string): boolean => {
    if (COST_STRATEGIES.has(cfg.models[model]?.strategy ?? cfg.routing.strategy) && !cfg.models[model]?.targets) return true;
    return Object.values(cfg.models).some((r) => COST_STRATEGIES.has(r.strategy ?? cfg.routing.strategy) && r.targets?.some((t) => t.provider === provider && t.model === model));
  };
  cfg.providers.forEach((p, i) => {
    p.models.forEach((m, j) => {
      const path = ['providers', i, 'models', j];
      if (m.unpriced && !hasNoPrices(m)) ctx.addIssue({ code: 'custom', path: [...path, 'unpriced'], message: 'the model has prices: remove unpriced: true' });
      if (m.unpriced || !hasNoPrices(m)) return;
      const why = budgets ? 'a team budget could use it' : costRouted(p.name, m.name) ? 'a cost strategy routes it' : undefined;
      if (why)
        ctx.addIssue({
          code: 'custom',
          path,
          message: `model "${m.name}" has no prices and ${why}: set input_per_million/output_per_million, or unpriced: true to count its requests as unpriced (cost 0)`,
        });
    });
  });
}

/** The config as written (before defaults). */
export type GatewayConfigInput = z.input<typeof configSchema>;
/** The config after validation and defaults. */
export type GatewayConfig = z.output<typeof configSchema>;
export type ProviderConfig = GatewayConfig['providers'][number];
/** The config of one provider type. */
export type ProviderOf<T extends ProviderConfig['type']> = Extract<ProviderConfig, { type: T }>;

/** A provider's config as its type's branch (an adapter is only ever handed providers of its own type). */
export function providerOfType<T extends ProviderConfig['type']>(p: ProviderConfig, type: T): ProviderOf<T> {
  if (p.type !== type) throw new Error(`provider "${p.name}" is of type ${p.type}, not ${type}`);
  return p as ProviderOf<T>;
}

/** The provider's API key, for the types that have one (bedrock signs with AWS credentials instead). */
export function providerApiKey(p: ProviderConfig): string | undefined {
  return p.type === 'bedrock' ? undefined : p.api_key;
}
export type ProviderModelConfig = ProviderConfig['models'][number];
export type ApiKeyConfig = GatewayConfig['auth']['keys'][number];
export type TeamConfig = GatewayConfig['teams'][number];
export type RateLimitConfig = z.output<typeof rateLimitSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid gateway config:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)), '');
}

/** Validates a parsed config object; throws ConfigError whose lines name each bad key. */
export function parseConfig(raw: unknown): GatewayConfig {
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((issue) => {
      const where = formatPath(issue.path) || '(root)';
      if (issue.code === 'unrecognized_keys') return `${where}: unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      return `${where}: ${issue.message}`;
    }),
  );
}
