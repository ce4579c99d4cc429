/**
 * Day-2 alerts: the failures that leave readiness green while the gateway runs degraded.
 *
 *   AIGatewayRedisUnreachable     a gateway pod cannot reach Redis (down, NetworkPolicy, or a password
 *                                 Redis does not have): limits fall back to per-replica memory, spend is buffered.
 *   AIGatewaySpendBuffered        spend held in a pod's memory, not yet in Redis (lost if the pod dies).
 *   AIGatewayProviderKeyRejected  a provider answers 401/403: its API key is wrong, revoked or rotated away.
 *   AIGatewayCanaryWorseThanStable  the canary's 5xx ratio is well above the stable track's.
 *   AIGatewaySmokeProbeFailing    the scheduled smoke probe has not succeeded for two periods, or has
 *                                 never succeeded two periods after the CronJob was created
 *                                 (kube-state-metrics: kube_cronjob_status_last_successful_time exists
 *                                 only after a first success, so kube_cronjob_created covers the rest).
 */
/** One alert rule as plain data (tests read them; the PrometheusRule carries them). */
export interface Alert {
  alert: string;
  expr: string;
  for: string;
  severity: 'critical' | 'warning' | 'info';
  summary: string;
  description: string;
}

export interface Day2AlertArgs {
  namespaceName: string;
  errorRateAlertRatio: number;
  /** Set when the smoke probe CronJob runs. */
  smokeProbe?: { schedule: string };
  probeCronJob: string;
}

/** Seconds between runs of a `*\/N * * * *` schedule (other schedules: one hour, the conservative bound). */
export function schedulePeriodSeconds(schedule: string): number {
  const m = /^\*\/(\d+) \* \* \* \*$/.exec(schedule.trim());
  return m ? Number(m[1]) * 60 : 3600;
}

/**
 * Stale last success, or no success at all since the CronJob was created `staleAfter` seconds ago
 * (`unless on()` drops the second arm as soon as any success series exists).
 */
export function probeFailingExpr(selector: string, staleAfter: number): string {
  const success = `kube_cronjob_status_last_successful_time{${selector}}`;
  return `(time() - max(${success}) > ${staleAfter}) or ((time() - max(kube_cronjob_created{${selector}}) > ${staleAfter}) unless on() count(${success}))`;
}

export function day2Alerts(a: Day2AlertArgs): Alert[] {
  const ns = `namespace="${a.namespaceName}"`;
  const ratio = (track: string) =>
    `(sum(rate(aigw_requests_total{${ns},app_kubernetes_io_track="${track}",status_class="5xx"}[10m])) / sum(rate(aigw_requests_total{${ns},app_kubernetes_io_track="${track}"}[10m])))`;
  const alerts: Alert[] = [
    {
      alert: 'AIGatewayRedisUnreachable',
      expr: `min by (pod) (aigw_redis_up{${ns}}) == 0`,
      for: '2m',
      severity: 'critical',
      summary: 'A gateway pod cannot reach Redis',
      description:
        'Pod {{ $labels.pod }} reports aigw_redis_up 0: rate limits are per replica, spend is buffered in memory and the cache is bypassed. Check the Redis pod, the NetworkPolicy and whether the Redis password matches (after a rotation both roll in one `pulumi up`).',
    },
    {
      alert: 'AIGatewaySpendBuffered',
      expr: `max by (pod) (aigw_spend_buffered_entries{${ns}}) > 0`,
      for: '5m',
      severity: 'warning',
      summary: 'Spend is held in gateway memory instead of Redis',
      description: 'Pod {{ $labels.pod }} holds {{ $value }} spend entries it could not write to Redis; they are lost if the pod stops before Redis is back.',
    },
    {
      alert: 'AIGatewayProviderKeyRejected',
      expr: `max by (provider) (aigw_provider_unhealthy{${ns}}) == 1`,
      for: '1m',
      severity: 'critical',
      summary: 'A provider rejects the gateway API key (401/403)',
      description: 'Provider {{ $labels.provider }} answers 401/403: set the right key with `pulumi config set --secret --path providerApiKeys.{{ $labels.provider }} ...` and `pulumi up`.',
    },
    {
      alert: 'AIGatewayCanaryWorseThanStable',
      expr: `${ratio('canary')} > 2 * ${ratio('stable')} and ${ratio('canary')} > ${a.errorRateAlertRatio / 2}`,
      for: '5m',
      severity: 'warning',
      summary: "The canary's 5xx ratio is more than twice the stable track's",
      description: 'Canary 5xx ratio is {{ $value | humanizePercentage }}. Roll back with `pulumi config set --path canary.weight 0 && pulumi up`, then `npm run smoke`.',
    },
  ];
  if (a.smokeProbe) {
    const staleAfter = 2 * schedulePeriodSeconds(a.smokeProbe.schedule) + 300;
    alerts.push({
      alert: 'AIGatewaySmokeProbeFailing',
      expr: probeFailingExpr(`${ns},cronjob="${a.probeCronJob}"`, staleAfter),
      for: '0m',
      severity: 'critical',
      summary: 'The scheduled smoke probe has not passed for two periods',
      description: `No successful ${a.probeCronJob} run for {{ $value | humanizeDuration }}. \`kubectl -n ${a.namespaceName} logs job/<latest ${a.probeCronJob} job>\` shows which check failed.`,
    });
  }
  return alerts;
}
