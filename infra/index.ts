/**
 * The Pulumi program: reads and validates the stack config, then composes one component per concern.
 * `pulumi up --stack staging|production`; `npm run render -- --stack NAME` renders it without a cluster.
 */
import * as pulumi from '@pulumi/pulumi';
import { objectLabels, selectorLabels } from './common';
import { digest } from './contentName';
import { checkCluster, clusterProvider } from './provider';
import { RENDER_ENV, renderCheck } from './selfCheck';
import { gatewayImage } from './image';
import { redisCaConfigMap } from './redisTls';
import { SmokeProbe } from './smokeProbe';
import { PROJECT, STACK_KEYS, STRING_KEYS, StackConfig, StackConfigError, parseStackConfig, servesGatewayApi, servesIngress, slotValue } from './config';
import { Canary } from './canary';
import { GatewayWorkload } from './gateway';
import { GatewayConfigMap } from './gatewayConfig';
import { acmeSolverAdmission, routeAdmission } from './gatewayApi';
import { Monitoring } from './monitoring';
import { GatewayNamespace } from './namespace';
import { NetworkPolicies, dnsEgress } from './networkPolicies';
import { awsEgress, awsEnv, gatewayServiceAccount } from './aws';
import { CnpgDatabase, databaseEgress, databaseEnv } from './database';
import { planStack } from './plan';
import { Redis, managedCacheEgress, passwordChecksum } from './redis';
import { PublicRoute, ingressSettings } from './route';
import { collectorEgress, telemetryEnv } from './telemetry';

/** The CLI hands structured values over as JSON text and top-level values as strings ("3" for 3). */
function parseValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** Reads every `ai-gateway:*` key (JSON values parsed), refusing keys the schema does not know. */
function readStackConfig(): StackConfig {
  const prefix = `${PROJECT}:`;
  const raw: Record<string, unknown> = {};
  const unknown: string[] = [];
  for (const [fullKey, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (!fullKey.startsWith(prefix)) continue;
    const key = fullKey.slice(prefix.length);
    if (!(STACK_KEYS as string[]).includes(key)) unknown.push(`${fullKey}: unknown key (known: ${STACK_KEYS.join(', ')})`);
    raw[key] = STRING_KEYS.has(key) ? value : parseValue(value);
  }
  if (unknown.length) throw new StackConfigError(unknown);
  return parseStackConfig(raw);
}

function load() {
  try {
    const stack = readStackConfig();
    // Before any resource exists: the stack's kubeconfig context must be there.
    const clusterProblem = checkCluster(stack.cluster);
    if (clusterProblem) throw new StackConfigError([clusterProblem]);
    const plan = planStack(stack, pulumi.getStack());
    // Every object, schema-checked and cross-checked as `npm run render` does, before one is registered.
    if (!process.env[RENDER_ENV]) {
      const problem = renderCheck(pulumi.getStack(), pulumi.runtime.allConfig(), PROJECT);
      if (problem) throw new StackConfigError([`the rendered objects fail validation, nothing was created (npm run render -- --stack ${pulumi.getStack()} shows the same):\n${problem}`]);
    }
    return { stack, ...plan };
  } catch (err) {
    // RunError: Pulumi prints the message (which names each bad key) without a stack trace.
    if (err instanceof StackConfigError) throw new pulumi.RunError(err.message);
    throw err;
  }
}

const { stack: c, gatewayConfig, canaryConfig, egress } = load();
const stackName = pulumi.getStack();
const gw = gatewayConfig.parsed;

// The slots cover the canary's providers too (secretSlots reads canary.gateway), so one Secret serves both tracks.
const secretValues = Object.fromEntries(gatewayConfig.secretSlots.map((s) => [s.env, slotValue(c, s)!]));
const secretChecksum = digest('secret-checksum', JSON.stringify(Object.entries(secretValues).sort()));
// Every object goes through the stack's own provider; production protects the namespace and the Redis data.
const provider = clusterProvider(c.cluster);
const protect = c.protect ?? c.environment === 'production';
const ns = new GatewayNamespace('namespace', { name: c.namespace, stack: stackName, environment: c.environment, secretEnv: pulumi.secret(secretValues), secretChecksum, protect }, { provider });

const config = new GatewayConfigMap('gateway-config', { namespace: ns.name, stack: stackName, rendered: gatewayConfig }, { provider });

if (c.redis.mode === 'in-cluster') {
  const password = c.redisPassword!;
  new Redis(
    'redis',
    {
      namespace: ns.name,
      namespaceName: c.namespace,
      stack: stackName,
      config: c.redis,
      password: pulumi.secret(password),
      passwordChecksum: passwordChecksum(password),
      protect,
      gatewayPodSelector: selectorLabels('gateway'),
    },
    { provider },
  );
}

const redisCa = redisCaConfigMap({ namespace: ns.name, stack: stackName, redis: c.redis }, { provider });

const image = gatewayImage(c);

const database =
  c.database?.mode === 'cnpg' ? new CnpgDatabase('database', { namespace: ns.name, stack: stackName, database: c.database, dns: dnsEgress(c.egress.dns), protect }, { provider }) : undefined;

const serviceAccount = gatewayServiceAccount(c.aws, { namespace: ns.name, stack: stackName }, { provider });

const autoscaling = c.autoscaling?.enabled === false ? undefined : c.autoscaling && { ...c.autoscaling };
const workloadArgs = {
  namespace: ns.name,
  stack: stackName,
  resources: c.resources,
  configMapName: config.name,
  configChecksum: config.checksum,
  secretName: ns.secretName,
  secretChecksum,
  imagePullSecrets: c.imagePullSecrets,
  redisCaConfigMap: redisCa?.metadata.name,
  ports: { http: gw.server.port, metrics: gw.server.metrics_port },
  shutdownGraceMs: gw.server.shutdown_grace_ms,
  preStopDelaySeconds: c.preStopDelaySeconds,
  extraEnv: { ...egress.proxyEnv, ...awsEnv(c.aws) },
  serviceAccountName: serviceAccount?.metadata.name,
  env: [...telemetryEnv(c.telemetry, c.environment, c.namespace), ...databaseEnv(c.database)],
};
// With an in-cluster database the pods start after its Cluster is Ready (the operator has written DATABASE_URL's Secret).
const gateway = new GatewayWorkload(
  'gateway',
  { ...workloadArgs, track: 'stable', image, replicas: c.replicas, autoscaling, disruptionBudget: true },
  { provider, dependsOn: database ? [database] : [] },
);

new NetworkPolicies(
  'netpol',
  {
    namespace: ns.name,
    labels: objectLabels(stackName, 'gateway'),
    gatewayPorts: { http: gw.server.port, metrics: gw.server.metrics_port },
    route: routeAdmission(c.route, c.namespace),
    acmeSolver: acmeSolverAdmission(c.route, c.namespace),
    prometheusNamespace: c.monitoring.prometheusNamespace,
    redis: c.redis,
    dns: c.egress.dns,
    egress,
    extraEgress: [
      ...(c.telemetry ? [collectorEgress(c.telemetry, c.namespace, c.egress.clusterDomain)] : []),
      ...(c.database ? [databaseEgress(c.database)] : []),
      ...awsEgress(c.aws),
      ...managedCacheEgress(c.redis),
    ],
  },
  { provider },
);

let canary: Canary | undefined;
if (c.canary && c.canary.weight > 0) {
  const own = canaryConfig && new GatewayConfigMap('canary-config', { namespace: ns.name, stack: stackName, rendered: canaryConfig, objectName: 'ai-gateway-canary-config' }, { provider });
  const canaryWorkload = own ? { ...workloadArgs, configMapName: own.name, configChecksum: own.checksum, shutdownGraceMs: canaryConfig.parsed.server.shutdown_grace_ms } : workloadArgs;
  const ingress = servesIngress(c.route) ? ingressSettings(c.route, ns.name, gw.server.body_limit_bytes) : undefined;
  canary = new Canary('canary', { image: c.canary.image, weight: c.canary.weight, replicas: c.canary.replicas, workload: canaryWorkload, ingress }, { provider });
}

if (c.smokeProbe?.enabled) {
  const probe = { probe: c.smokeProbe, key: pulumi.secret(c.smokeProbeKey!), serviceUrl: gateway.url, gatewayHttpPort: gw.server.port, dns: dnsEgress(c.egress.dns) };
  new SmokeProbe('smoke-probe', { ...probe, namespace: ns.name, stack: stackName, image, imagePullSecrets: c.imagePullSecrets }, { provider });
}

const route = new PublicRoute(
  'route',
  {
    namespace: ns.name,
    namespaceName: c.namespace,
    labels: gateway.podLabels,
    route: c.route,
    stable: { service: gateway.serviceName, port: gateway.servicePort },
    canary: canary && servesGatewayApi(c.route) ? { service: canary.workload.serviceName, port: canary.workload.servicePort, weight: c.canary!.weight } : undefined,
    bodyLimitBytes: gw.server.body_limit_bytes,
    containerPort: gw.server.port,
  },
  { provider },
);

if (c.monitoring.enabled) {
  new Monitoring(
    'monitoring',
    {
      namespace: ns.name,
      namespaceName: c.namespace,
      stack: stackName,
      labels: objectLabels(stackName, 'gateway'),
      ruleLabels: c.monitoring.ruleLabels,
      dashboardNamespace: c.monitoring.dashboardNamespace ?? ns.name,
      dailySpendAlertUsd: c.monitoring.dailySpendAlertUsd,
      errorRateAlertRatio: c.monitoring.errorRateAlertRatio,
      p99LatencyAlertSeconds: c.monitoring.p99LatencyAlertSeconds,
      smokeProbe: c.smokeProbe?.enabled ? { schedule: c.smokeProbe.schedule } : undefined,
    },
    { provider },
  );
}

export const namespace = ns.name;
export const serviceUrl = gateway.url;
export const routeKind = c.route.kind;
export const publicHost = route.host;
export const publicUrl = `https://${c.route.host}/v1`;
export const canaryWeight = c.canary?.weight ?? 0;
