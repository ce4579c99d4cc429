/**
 * A local OTLP/HTTP trace receiver on 127.0.0.1 (POST /v1/traces), standing in for a
 * collector: it keeps every payload as received (raw bytes, for "no secret anywhere"
 * checks) and decodes the OTLP/JSON ones (OTEL_EXPORTER_OTLP_PROTOCOL=http/json) into
 * flat spans. With `keep: false` it only counts (the benchmark's sink).
 */
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

type AttrValue = string | number | boolean;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 2 server, 3 client. */
  kind: number;
  startNs: bigint;
  endNs: bigint;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  status: number;
  attrs: Record<string, AttrValue>;
  resource: Record<string, AttrValue>;
}

export interface OtlpReceiver {
  /** Base URL, as OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces). */
  url: string;
  /** Raw payloads with their content type (when `keep`). */
  payloads: Array<{ contentType: string; path: string; body: Buffer }>;
  requests: number;
  bytes: number;
  /** Spans received, in either encoding. */
  spanCount: number;
  /** Every span of every OTLP/JSON payload so far. */
  spans(): ReceivedSpan[];
  /** Waits until `pred(spans())` holds (polls; rejects after `timeoutMs`). */
  waitFor(pred: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

interface JsonAttr {
  key: string;
  value: { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
}

const attrsOf = (list: JsonAttr[] | undefined): Record<string, AttrValue> =>
  Object.fromEntries((list ?? []).map(({ key, value: v }) => [key, v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.doubleValue ?? v.boolValue ?? ''))]));

/** Flattens one OTLP/JSON ExportTraceServiceRequest. */
export function decodeJson(body: Buffer): ReceivedSpan[] {
  const req = JSON.parse(body.toString('utf8')) as {
    resourceSpans?: Array<{ resource?: { attributes?: JsonAttr[] }; scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }> }>;
  };
  const out: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const resource = attrsOf(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: String(s.traceId),
          spanId: String(s.spanId),
          parentSpanId: String(s.parentSpanId ?? ''),
          name: String(s.name),
          kind: Number(s.kind),
          startNs: BigInt(String(s.startTimeUnixNano)),
          endNs: BigInt(String(s.endTimeUnixNano)),
          status: Number((s.status as { code?: number } | undefined)?.code ?? 0),
          attrs: attrsOf(s.attributes as JsonAttr[]),
          resource,
        });
      }
    }
  }
  return out;
}

/** Reads a protobuf varint at `i`: [value, next index]. */
function varint(b: Buffer, i: number): [number, number] {
  let v = 0;
  for (let shift = 0; ; shift += 7) {
    const byte = b[i++];
    v += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return [v, i];
  }
}

/** The length-delimited fields numbered `field` of one protobuf message (other fields skipped). */
function lenFields(b: Buffer, field: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length;) {
    const [key, at] = varint(b, i);
    const wire = key & 7;
    if (wire === 2) {
      const [len, start] = varint(b, at);
      if (key >>> 3 === field) out.push(b.subarray(start, start + len));
      i = start + len;
    } else if (wire === 0) i = varint(b, at)[1];
    else if (wire === 1) i = at + 8;
    else if (wire === 5) i = at + 4;
    else throw new Error(`unexpected protobuf wire type ${wire}`);
  }
  return out;
}

/** Spans in an OTLP protobuf ExportTraceServiceRequest: resource_spans(1) > scope_spans(2) > spans(2). */
export const countProtobufSpans = (body: Buffer): number => lenFields(body, 1).reduce((n, rs) => n + lenFields(rs, 2).reduce((m, ss) => m + lenFields(ss, 2).length, 0), 0);

export async function startOtlpReceiver(opts: { keep?: boolean } = {}): Promise<OtlpReceiver> {
  const keep = opts.keep ?? true;
  const state: Omit<OtlpReceiver, 'url' | 'close'> & { url: string; close: () => Promise<void> } = {
    url: '',
    payloads: [],
    requests: 0,
    bytes: 0,
    spanCount: 0,
    spans: () => state.payloads.filter((p) => p.contentType.includes('json')).flatMap((p) => decodeJson(p.body)),
    waitFor: async (pred, timeoutMs = 10_000) => {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const spans = state.spans();
        if (pred(spans)) return spans;
        if (Date.now() > until) throw new Error(`the expected spans did not arrive in ${timeoutMs} ms; got: ${spans.map((s) => s.name).join(', ') || 'none'}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const contentType = String(req.headers['content-type'] ?? '');
      state.requests++;
      state.bytes += body.length;
      state.spanCount += contentType.includes('json') ? decodeJson(body).length : countProtobufSpans(body);
      if (keep) state.payloads.push({ contentType, path: req.url ?? '', body });
      // An empty ExportTraceServiceResponse: full success.
      if (contentType.includes('json')) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
