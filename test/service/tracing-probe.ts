/**
 * Run by tracing.test.ts in a fresh process: starts a gateway in-process with this process's
 * environment, serves one chat completion, and prints whether any OpenTelemetry SDK module was
 * loaded, the trace id of the request log line, and the traceparent the provider received.
 */
import { startFakeUpstream } from '../helpers/fake-upstream';
import { startTestGateway } from '../helpers/gateway';
import { provider } from '../helpers/gateway';

async function main(): Promise<void> {
  const upstream = await startFakeUpstream('probe');
  const gw = await startTestGateway({ auth: { mode: 'none' }, providers: [provider('probe', upstream.url, ['m'])] }, process.env);
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
  });
  if (res.status !== 200) throw new Error(`gateway answered ${res.status}: ${await res.text()}`);
  await new Promise((r) => setTimeout(r, 50));
  const line = gw.logs.find((l) => l.includes('"request_id"'));
  const traceId = line ? ((JSON.parse(line) as { trace_id?: string }).trace_id ?? null) : null;
  // (@opentelemetry/api alone does not count: prom-client loads it for exemplars either way.)
  const sdkLoaded = Object.keys(require.cache).some((k) => /\/@opentelemetry\/(sdk-trace|exporter-trace|otlp-|resources)/.test(k));
  const upstreamTraceparent = (upstream.received[0]?.headers.traceparent as string | undefined) ?? null;
  await gw.shutdown();
  await upstream.close();
  process.stdout.write(`${JSON.stringify({ sdkLoaded, traceId, upstreamTraceparent })}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
