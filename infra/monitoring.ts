/**
 * Monitoring through the Prometheus operator: a ServiceMonitor for the metrics port of both
 * tracks, a PrometheusRule with the alerts the design asks for, and a Grafana dashboard as a
 * ConfigMap the Grafana sidecar picks up (label grafana_dashboard: "1").
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { APP, selectorLabels } from './common';
import { Alert, day2Alerts } from './alerts';
import { dashboardJson } from './dashboard';
import { PROBE_CRONJOB } from './smokeProbe';

export interface MonitoringArgs {
  namespace: pulumi.Input<string>;
  /** The namespace name as plain text, for PromQL matchers. */
  namespaceName: string;
  stack: string;
  labels: Record<string, string>;
  /** Labels the Prometheus operator selects rules and monitors by (e.g. release: kube-prometheus-stack). */
  ruleLabels: Record<string, string>;
  dashboardNamespace: pulumi.Input<string>;
  dailySpendAlertUsd: number;
  errorRateAlertRatio: number;
  p99LatencyAlertSeconds: number;
  /** Set when the smoke probe CronJob runs (adds its alert). */
  smokeProbe?: { schedule: string };
}

export type { Alert };

/** The alert rules, as pure data (tests read them; the PrometheusRule carries them). */
export function alertRules(a: Pick<MonitoringArgs, 'namespaceName' | 'dailySpendAlertUsd' | 'errorRateAlertRatio' | 'p99LatencyAlertSeconds' | 'smokeProbe'>): Alert[] {
  const ns = `namespace="${a.namespaceName}"`;
  const errorRatio = (extra: string) => `sum(rate(aigw_requests_total{${ns}${extra},status_class="5xx"}[5m])) / sum(rate(aigw_requests_total{${ns}${extra}}[5m]))`;
  return [
    {
      alert: 'AIGatewayDailySpendHigh',
      expr: `sum(increase(aigw_cost_usd_total{${ns}}[24h])) > ${a.dailySpendAlertUsd}`,
      for: '15m',
      severity: 'warning',
      summary: `Spend through the gateway exceeded $${a.dailySpendAlertUsd} in the last 24 hours`,
      description: 'Spend over 24h is {{ $value | printf "%.2f" }} USD. See the per-team breakdown on the AI gateway dashboard.',
    },
    {
      alert: 'AIGatewayHighErrorRate',
      expr: `(${errorRatio('')}) > ${a.errorRateAlertRatio}`,
      for: '10m',
      severity: 'critical',
      summary: `More than ${a.errorRateAlertRatio * 100}% of gateway requests fail with 5xx`,
      description: '5xx ratio is {{ $value | humanizePercentage }} over 5 minutes.',
    },
    {
      alert: 'AIGatewayCanaryErrorRate',
      expr: `(${errorRatio(',app_kubernetes_io_track="canary"')}) > ${a.errorRateAlertRatio}`,
      for: '5m',
      severity: 'warning',
      summary: 'The canary fails more requests than the error budget allows: consider rolling it back',
      description: 'Canary 5xx ratio is {{ $value | humanizePercentage }}. Roll back with `pulumi config set --path canary.weight 0 && pulumi up`.',
    },
    {
      alert: 'AIGatewayHighP99Latency',
      expr: `histogram_quantile(0.99, sum by (le) (rate(aigw_request_duration_seconds_bucket{${ns},stream="false"}[5m]))) > ${a.p99LatencyAlertSeconds}`,
      for: '15m',
      severity: 'warning',
      summary: `p99 latency of non-streaming requests is above ${a.p99LatencyAlertSeconds}s`,
      description: 'p99 is {{ $value | humanizeDuration }}.',
    },
    {
      alert: 'AIGatewayCircuitOpen',
      expr: `max by (provider, model) (aigw_circuit_state{${ns}}) == 2`,
      for: '5m',
      severity: 'warning',
      summary: 'A provider circuit breaker is open',
      description: 'Circuit for {{ $labels.provider }} / {{ $labels.model }} has been open for 5 minutes; traffic fails over to other providers.',
    },
    {
      alert: 'AIGatewayTeamBudgetAlert',
      expr: `max by (team, period) (aigw_budget_alert{${ns}}) == 1`,
      for: '5m',
      severity: 'info',
      summary: 'A team passed the alert threshold of its budget',
      description: 'Team {{ $labels.team }} has spent past its alert threshold of the {{ $labels.period }} budget.',
    },
    ...day2Alerts({ ...a, probeCronJob: PROBE_CRONJOB }),
  ];
}

export class Monitoring extends pulumi.ComponentResource {
  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super('ai-gateway:infra:Monitoring', name, {}, opts);
    const metadata = { name: APP, namespace: args.namespace, labels: { ...args.labels, ...args.ruleLabels } };

    new k8s.apiextensions.CustomResource(
      `${name}-servicemonitor`,
      {
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'ServiceMonitor',
        metadata,
        spec: {
          // Matches the stable and the canary Service; the track label lets alerts and the dashboard tell them apart.
          selector: { matchLabels: selectorLabels('gateway') },
          namespaceSelector: { matchNames: [args.namespaceName] },
          podTargetLabels: ['app.kubernetes.io/track'],
          endpoints: [{ port: 'metrics', path: '/metrics', interval: '30s', scrapeTimeout: '10s' }],
        },
      },
      { parent: this },
    );

    new k8s.apiextensions.CustomResource(
      `${name}-rules`,
      {
        apiVersion: 'monitoring.coreos.com/v1',
        kind: 'PrometheusRule',
        metadata,
        spec: {
          groups: [
            {
              name: 'ai-gateway',
              rules: alertRules(args).map((r) => ({
                alert: r.alert,
                expr: r.expr,
                for: r.for,
                labels: { severity: r.severity },
                annotations: { summary: r.summary, description: r.description },
              })),
            },
          ],
        },
      },
      { parent: this },
    );

    new k8s.core.v1.ConfigMap(
      `${name}-dashboard`,
      {
        metadata: { name: `${APP}-dashboard-${args.stack}`, namespace: args.dashboardNamespace, labels: { ...args.labels, grafana_dashboard: '1' } },
        data: { [`ai-gateway-${args.stack}.json`]: dashboardJson(args.stack, args.namespaceName) },
      },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
