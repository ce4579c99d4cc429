/**
 * The scheduled smoke probe: a CronJob that runs the smoke script (scripts/smoke.ts, in the gateway
 * image) against the stable Service, by default every 15 minutes, with a key of its own.
 *
 * The key is an ordinary client key with a low rate limit and (when the stack has teams) a team of
 * its own with a small daily budget, so a broken probe can neither starve clients nor spend much.
 * The gateway config holds only its hash (`${CLIENT_KEY_HASH_SMOKE_PROBE}`, from the gateway Secret);
 * the plaintext is in the probe's own content-named Secret, read by the probe pod alone.
 *
 * A failing run fails its Job; the alert AIGatewaySmokeProbeFailing (infra/alerts.ts) fires when the
 * CronJob has had no successful run for two schedule periods, including when it never had one.
 * The probe judges the gateway's path (the stream's first byte), not the model's answer time.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { APP, GATEWAY_UID, containerSecurityContext, objectLabels, podSecurityContext, selectorLabels } from './common';
import { PROBE_KEY_HASH_ENV, StackConfig } from './config';
import { contentName, digest } from './contentName';

export const PROBE_NAME = 'smoke-probe';
export const PROBE_CRONJOB = `${APP}-${PROBE_NAME}`;

type GatewayBlock = StackConfig['gateway'];

/** The gateway block with the probe's key (and team, when the stack declares teams) added. */
export function withProbeKey(stack: Pick<StackConfig, 'smokeProbe'>, gateway: GatewayBlock): GatewayBlock {
  const probe = stack.smokeProbe;
  if (!probe?.enabled) return gateway;
  const teams = (gateway.teams ?? []) as Array<Record<string, unknown>>;
  // The hash is a ${VAR} reference: the stack-level schema forbids literal hashes in `gateway`, not this program.
  const key = {
    name: PROBE_NAME,
    hash: `\${${PROBE_KEY_HASH_ENV}}`,
    team: teams.length ? PROBE_NAME : 'ops',
    project: PROBE_NAME,
    rate_limit: { requests_per_minute: probe.requestsPerMinute },
  };
  return {
    ...gateway,
    auth: { ...gateway.auth, keys: [...gateway.auth.keys, key as unknown as GatewayBlock['auth']['keys'][number]] },
    ...(teams.length ? { teams: [...teams, { name: PROBE_NAME, budget: { daily_usd: probe.dailyBudgetUsd } }] } : {}),
  };
}

/** The probe's command line (pure, tested). */
export function probeCommand(url: string, probe: NonNullable<StackConfig['smokeProbe']>): string[] {
  return [
    'node',
    'dist/scripts/smoke.js',
    '--url',
    url,
    '--max-first-byte-ms',
    String(probe.maxFirstByteMs),
    '--max-latency-ms',
    String(probe.maxLatencyMs),
    ...(probe.model ? ['--model', probe.model] : []),
  ];
}

export interface SmokeProbeArgs {
  namespace: pulumi.Input<string>;
  stack: string;
  image: pulumi.Input<string>;
  imagePullSecrets: string[];
  probe: NonNullable<StackConfig['smokeProbe']>;
  /** The probe's plaintext key (a secret Output). */
  key: pulumi.Input<string>;
  /** In-cluster URL of the stable Service. */
  serviceUrl: pulumi.Input<string>;
  gatewayHttpPort: number;
  /** The stack's DNS egress rule (networkPolicies.ts dnsEgress: kube-dns by label, NodeLocal DNSCache). */
  dns: k8s.types.input.networking.v1.NetworkPolicyEgressRule;
}

export class SmokeProbe extends pulumi.ComponentResource {
  readonly cronJob: k8s.batch.v1.CronJob;

  constructor(name: string, args: SmokeProbeArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ai-gateway:infra:SmokeProbe', name, {}, opts);
    const labels = objectLabels(args.stack, 'smoke-probe');
    const keyDigest = pulumi.output(args.key).apply((k) => digest('smoke-probe-key', k));
    const secret = new k8s.core.v1.Secret(
      `${name}-key`,
      {
        metadata: { name: pulumi.unsecret(keyDigest).apply((d) => contentName(PROBE_CRONJOB, d)), namespace: args.namespace, labels },
        type: 'Opaque',
        immutable: true,
        stringData: { GATEWAY_KEY: pulumi.secret(args.key) },
      },
      { parent: this },
    );
    const resources = { requests: { cpu: '10m', memory: '64Mi' }, limits: { cpu: '200m', memory: '128Mi' } };
    this.cronJob = new k8s.batch.v1.CronJob(
      name,
      {
        metadata: { name: PROBE_CRONJOB, namespace: args.namespace, labels },
        spec: {
          schedule: args.probe.schedule,
          concurrencyPolicy: 'Forbid',
          startingDeadlineSeconds: 300,
          successfulJobsHistoryLimit: 1,
          failedJobsHistoryLimit: 3,
          jobTemplate: {
            metadata: { labels },
            spec: {
              backoffLimit: 0,
              activeDeadlineSeconds: 120,
              template: {
                metadata: { labels },
                spec: {
                  restartPolicy: 'Never',
                  automountServiceAccountToken: false,
                  enableServiceLinks: false,
                  securityContext: podSecurityContext(GATEWAY_UID),
                  imagePullSecrets: args.imagePullSecrets.map((n) => ({ name: n })),
                  containers: [
                    {
                      name: 'smoke',
                      image: args.image,
                      imagePullPolicy: 'IfNotPresent',
                      command: pulumi.output(args.serviceUrl).apply((url) => probeCommand(url, args.probe)),
                      env: [{ name: 'GATEWAY_KEY', valueFrom: { secretKeyRef: { name: secret.metadata.name, key: 'GATEWAY_KEY' } } }],
                      resources,
                      securityContext: containerSecurityContext(GATEWAY_UID),
                    },
                  ],
                },
              },
            },
          },
        },
      },
      { parent: this },
    );
    this.policies(name, args);
    this.registerOutputs({});
  }

  /** Probe pods reach DNS and the gateway's HTTP port only; the gateway admits them on that port (additive policies). */
  private policies(name: string, args: SmokeProbeArgs) {
    const probePods = { podSelector: { matchLabels: selectorLabels('smoke-probe') } };
    const http = [{ protocol: 'TCP', port: args.gatewayHttpPort }];
    const policy = (suffix: string, spec: k8s.types.input.networking.v1.NetworkPolicySpec) =>
      new k8s.networking.v1.NetworkPolicy(
        `${name}-${suffix}`,
        { metadata: { name: `${APP}-${suffix}`, namespace: args.namespace, labels: objectLabels(args.stack, 'smoke-probe') }, spec },
        { parent: this },
      );
    policy(PROBE_NAME, {
      podSelector: probePods.podSelector,
      policyTypes: ['Ingress', 'Egress'],
      ingress: [],
      egress: [args.dns, { to: [{ podSelector: { matchLabels: selectorLabels('gateway', 'stable') } }], ports: http }],
    });
    policy(`gateway-from-${PROBE_NAME}`, {
      podSelector: { matchLabels: selectorLabels('gateway', 'stable') },
      policyTypes: ['Ingress'],
      ingress: [{ from: [probePods], ports: http }],
    });
  }
}
