/**
 * The Pulumi program: reads and validates the stack config, then composes one component per concern.
 * `pulumi up --stack staging|production`; `npm run render -- --stack NAME` renders it without a cluster.
 */
import { createHash } from 'node:crypto';
import * as pulumi from '@pulumi/pulumi';
import { objectLabels } from './common';
import { PROJECT, STACK_KEYS, STRING_KEYS, StackConfig, StackConfigError, parseStackConfig, slotValue } from './config';
import { Canary } from './canary';
import { GatewayWorkload } from './gateway';
import { GatewayConfigMap, renderGatewayConfig } from './gatewayConfig';
import { GatewayIngress } from './ingress';
import { Monitoring } from './monitoring';
import { GatewayNamespace } from './namespace';
import { NetworkPolicies } from './networkPolicies';
import { REDIS_SERVICE, Redis } from './redis';
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
    return { stack, gatewayConfig: renderGatewayConfig(stack, REDIS_SERVICE) };
  } catch (err) {
    // RunError: Pulumi prints the message (which names each bad key) without a stack trace.
    if (err instanceof StackConfigError) throw new pulumi.RunError(err.message);
    throw err;
  }
}

const { stack: c, gatewayConfig } = load();
const stackName = pulumi.getStack();
const gw = gatewayConfig.parsed;

const secretValues = Object.fromEntries(gatewayConfig.secretSlots.map((s) => [s.env, slotValue(c, s)!]));
const ns = new GatewayNamespace('namespace', { name: c.namespace, stack: stackName, environment: c.environment, secretEnv: pulumi.secret(secretValues) });

const config = new GatewayConfigMap('gateway-config', { namespace: ns.name, stack: stackName, rendered: gatewayConfig });

new Redis('redis', { namespace: ns.name, stack: stackName, config: c.redis, secretName: ns.secretName });

const autoscaling = c.autoscaling?.enabled === false ? undefined : c.autoscaling && { ...c.autoscaling };
const workloadArgs = {
  namespace: ns.name,
  stack: stackName,
  resources: c.resources,
  configMapName: config.name,
  configChecksum: config.checksum,
  secretName: ns.secretName,
  secretChecksum: createHash('sha256').update(`${PROJECT}/secret-checksum\0${JSON.stringify(Object.entries(secretValues).sort())}`).digest('hex'),
  ports: { http: gw.server.port, metrics: gw.server.metrics_port },
  shutdownGraceMs: gw.server.shutdown_grace_ms,
  preStopDelaySeconds: c.preStopDelaySeconds,
  env: telemetryEnv(c.telemetry, c.environment, c.namespace),
};
const gateway = new GatewayWorkload('gateway', { ...workloadArgs, track: 'stable', image: c.image, replicas: c.replicas, autoscaling, disruptionBudget: true });

new NetworkPolicies('netpol', {
  namespace: ns.name,
  labels: objectLabels(stackName, 'gateway'),
  gatewayPorts: { http: gw.server.port, metrics: gw.server.metrics_port },
  ingressControllerNamespace: c.ingress.controllerNamespace,
  prometheusNamespace: c.monitoring.prometheusNamespace,
  redis: c.redis,
  extraEgress: c.telemetry ? [collectorEgress(c.telemetry, c.namespace)] : [],
});

const ingressArgs = {
  namespace: ns.name,
  host: c.ingress.host,
  className: c.ingress.className,
  clusterIssuer: c.ingress.clusterIssuer,
  tlsSecretName: c.ingress.tlsSecretName ?? `${c.ingress.host.replace(/\./g, '-')}-tls`.slice(0, 63),
  bodyLimitBytes: gw.server.body_limit_bytes,
  readTimeoutSeconds: c.ingress.readTimeoutSeconds,
};
const ingress = new GatewayIngress('ingress', { ...ingressArgs, name: 'ai-gateway', labels: gateway.podLabels, serviceName: gateway.serviceName });

if (c.canary && c.canary.weight > 0) {
  new Canary('canary', { image: c.canary.image, weight: c.canary.weight, replicas: c.canary.replicas, workload: workloadArgs, ingress: ingressArgs });
}

if (c.monitoring.enabled) {
  new Monitoring('monitoring', {
    namespace: ns.name,
    namespaceName: c.namespace,
    stack: stackName,
    labels: objectLabels(stackName, 'gateway'),
    ruleLabels: c.monitoring.ruleLabels,
    dashboardNamespace: c.monitoring.dashboardNamespace ?? ns.name,
    dailySpendAlertUsd: c.monitoring.dailySpendAlertUsd,
    errorRateAlertRatio: c.monitoring.errorRateAlertRatio,
    p99LatencyAlertSeconds: c.monitoring.p99LatencyAlertSeconds,
  });
}

export const namespace = ns.name;
export const serviceUrl = gateway.url;
export const ingressHost = ingress.host;
export const publicUrl = `https://${c.ingress.host}/v1`;
export const canaryWeight = c.canary?.weight ?? 0;
