/** The Grafana dashboard for one stack, as JSON for the Grafana sidecar. Queries use the metrics of service/metrics/metrics.ts. */

interface Panel {
  title: string;
  unit: string;
  /** PromQL with `$ns` for the namespace matcher, and the legend per query. */
  queries: { expr: string; legend: string }[];
}

const PANELS: Panel[] = [
  { title: 'Requests per second by status class', unit: 'reqps', queries: [{ expr: 'sum by (status_class) (rate(aigw_requests_total{$ns}[5m]))', legend: '{{status_class}}' }] },
  {
    title: '5xx ratio by track (stable / canary)',
    unit: 'percentunit',
    queries: [
      {
        expr: 'sum by (app_kubernetes_io_track) (rate(aigw_requests_total{$ns,status_class="5xx"}[5m])) / sum by (app_kubernetes_io_track) (rate(aigw_requests_total{$ns}[5m]))',
        legend: '{{app_kubernetes_io_track}}',
      },
    ],
  },
  {
    title: 'Latency (non-streaming)',
    unit: 's',
    queries: ['0.5', '0.99'].map((q) => ({ expr: `histogram_quantile(${q}, sum by (le) (rate(aigw_request_duration_seconds_bucket{$ns,stream="false"}[5m])))`, legend: `p${Number(q) * 100}` })),
  },
  {
    title: 'Time to first streamed byte p99',
    unit: 's',
    queries: [{ expr: 'histogram_quantile(0.99, sum by (le, provider) (rate(aigw_stream_time_to_first_byte_seconds_bucket{$ns}[5m])))', legend: '{{provider}}' }],
  },
  { title: 'Spend USD per hour by team', unit: 'currencyUSD', queries: [{ expr: 'sum by (team) (increase(aigw_cost_usd_total{$ns}[1h]))', legend: '{{team}}' }] },
  { title: 'Tokens per second by direction', unit: 'short', queries: [{ expr: 'sum by (direction) (rate(aigw_tokens_total{$ns}[5m]))', legend: '{{direction}}' }] },
  { title: 'Circuit state (2 = open)', unit: 'short', queries: [{ expr: 'max by (provider, model) (aigw_circuit_state{$ns})', legend: '{{provider}} {{model}}' }] },
  { title: 'Failovers per second', unit: 'short', queries: [{ expr: 'sum by (from_provider, to_provider) (rate(aigw_failovers_total{$ns}[5m]))', legend: '{{from_provider}} -> {{to_provider}}' }] },
  { title: 'Budget used by team', unit: 'percentunit', queries: [{ expr: 'max by (team, period) (aigw_budget_used_ratio{$ns})', legend: '{{team}} {{period}}' }] },
  { title: 'Redis reachable', unit: 'short', queries: [{ expr: 'min(aigw_redis_up{$ns})', legend: 'redis up' }] },
];

export function dashboardJson(stack: string, namespace: string): string {
  const ns = `namespace="${namespace}"`;
  const datasource = { type: 'prometheus', uid: '${datasource}' };
  return JSON.stringify(
    {
      uid: `ai-gateway-${stack}`.slice(0, 40),
      title: `AI gateway (${stack})`,
      tags: ['ai-gateway'],
      schemaVersion: 39,
      time: { from: 'now-6h', to: 'now' },
      refresh: '30s',
      templating: { list: [{ name: 'datasource', type: 'datasource', query: 'prometheus', label: 'Data source' }] },
      panels: PANELS.map((p, i) => ({
        id: i + 1,
        type: 'timeseries',
        title: p.title,
        datasource,
        gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
        fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
        targets: p.queries.map((q, j) => ({ refId: String.fromCharCode(65 + j), datasource, expr: q.expr.replaceAll('$ns', ns), legendFormat: q.legend })),
      })),
    },
    null,
    2,
  );
}
