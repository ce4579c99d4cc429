/**
 * The OpenAI Responses API and a few pass-through endpoints for the fake upstream, shaped
 * from OpenAI's API reference: the Response object (id "resp_…", object "response", status,
 * model, output[] of message items with output_text parts, usage with input_tokens,
 * input_tokens_details.cached_tokens, output_tokens, output_tokens_details.reasoning_tokens,
 * total_tokens), its typed stream (`event: <type>` + data with type and sequence_number:
 * response.created, response.in_progress, response.output_item.added,
 * response.content_part.added, response.output_text.delta…, response.output_text.done,
 * response.content_part.done, response.output_item.done, response.completed; no [DONE]),
 * GET/DELETE /responses/{id}, GET /responses/{id}/input_items, files, moderations, images.
 */
export const RESPONSES_USAGE = { input_tokens: 10, input_tokens_details: { cached_tokens: 4 }, output_tokens: 5, output_tokens_details: { reasoning_tokens: 2 }, total_tokens: 15 };

export interface StoredResponse {
  response: Record<string, unknown>;
  input: unknown;
  /** A background response: GETs answer in_progress this many more times, then `final`. */
  background?: { polls: number; final: Record<string, unknown> };
}

/** The usage of a finished background response: a long reasoning answer. */
export const BACKGROUND_USAGE = { input_tokens: 10, input_tokens_details: { cached_tokens: 0 }, output_tokens: 100_000, output_tokens_details: { reasoning_tokens: 90_000 }, total_tokens: 100_010 };

/** POST /responses with background: true: queued now, completed after `polls` reads. */
export function backgroundResponse(id: string, model: string, text: string, input: unknown, polls = 2): StoredResponse {
  const final = { ...responseObject(id, model, text, 'completed', true), background: true, usage: BACKGROUND_USAGE };
  return { response: { ...responseObject(id, model, '', 'in_progress', false), status: 'queued', background: true }, input, background: { polls, final } };
}

export function responseObject(id: string, model: string, text: string, status: 'in_progress' | 'completed', usage: boolean): Record<string, unknown> {
  const done = status === 'completed';
  return {
    id,
    object: 'response',
    created_at: 1700000000,
    status,
    error: null,
    incomplete_details: null,
    model,
    output: done ? [{ type: 'message', id: `msg_${id}`, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] }] : [],
    parallel_tool_calls: true,
    tool_choice: 'auto',
    tools: [],
    usage: done && usage ? RESPONSES_USAGE : null,
  };
}

const event = (type: string, seq: number, body: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq, ...body })}\n\n`;

/** The events of one streamed response, in the order the API sends them; `texts` are the deltas. */
export function responseEvents(id: string, model: string, texts: string[], usage: boolean): string[] {
  const msg = `msg_${id}`;
  const full = texts.join('');
  let seq = 0;
  const out: string[] = [];
  out.push(event('response.created', seq++, { response: responseObject(id, model, '', 'in_progress', false) }));
  out.push(event('response.in_progress', seq++, { response: responseObject(id, model, '', 'in_progress', false) }));
  out.push(event('response.output_item.added', seq++, { output_index: 0, item: { type: 'message', id: msg, status: 'in_progress', role: 'assistant', content: [] } }));
  out.push(event('response.content_part.added', seq++, { item_id: msg, output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } }));
  for (const t of texts) out.push(event('response.output_text.delta', seq++, { item_id: msg, output_index: 0, content_index: 0, delta: t, logprobs: [] }));
  out.push(event('response.output_text.done', seq++, { item_id: msg, output_index: 0, content_index: 0, text: full, logprobs: [] }));
  out.push(event('response.content_part.done', seq++, { item_id: msg, output_index: 0, content_index: 0, part: { type: 'output_text', text: full, annotations: [] } }));
  out.push(
    event('response.output_item.done', seq++, {
      output_index: 0,
      item: { type: 'message', id: msg, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: full, annotations: [] }] },
    }),
  );
  out.push(event('response.completed', seq++, { response: responseObject(id, model, full, 'completed', usage) }));
  return out;
}

const notFound = (what: string) => ({ status: 404, body: { error: { message: `No ${what} found.`, type: 'invalid_request_error', param: null, code: null } } });

/** GET/DELETE /responses/{id} and GET /responses/{id}/input_items against the responses this fake stored. */
export function storedResponseCall(method: string, path: string, stored: Map<string, StoredResponse>): { status: number; body: unknown } {
  const m = /\/responses\/([^/?]+)(\/input_items)?/.exec(path)!;
  const s = stored.get(m[1]);
  if (!s) return notFound(`response with id '${m[1]}'`);
  if (m[2]) {
    const items = (typeof s.input === 'string' ? [{ role: 'user', content: [{ type: 'input_text', text: s.input }] }] : (s.input as unknown[])).map((x, i) => ({
      id: `msg_in_${i}`,
      type: 'message',
      status: 'completed',
      ...(x as object),
    }));
    return { status: 200, body: { object: 'list', data: items, first_id: items[0]?.id ?? null, last_id: items[items.length - 1]?.id ?? null, has_more: false } };
  }
  if (method === 'DELETE') {
    stored.delete(m[1]);
    return { status: 200, body: { id: m[1], object: 'response', deleted: true } };
  }
  if (s.background) {
    if (s.background.polls > 0) s.background.polls--;
    else s.response = s.background.final;
  }
  return { status: 200, body: s.response.status === 'queued' ? { ...s.response, status: 'in_progress' } : s.response };
}

/** Files (create, retrieve, content, delete, list), moderations and image generation. */
export function passthroughCall(
  method: string,
  path: string,
  body: Record<string, unknown>,
  files: Map<string, Record<string, unknown>>,
  rawBytes: number,
): { status: number; body: unknown; contentType?: string } {
  if (path.endsWith('/files') && method === 'POST') {
    const id = `file-${files.size + 1}${Math.random().toString(36).slice(2, 8)}`;
    const f = { id, object: 'file', bytes: rawBytes, created_at: 1700000000, filename: 'data.jsonl', purpose: 'batch' };
    files.set(id, f);
    return { status: 200, body: f };
  }
  if (path.endsWith('/files') && method === 'GET') return { status: 200, body: { object: 'list', data: [...files.values()], has_more: false } };
  const fm = /\/files\/([^/?]+)(\/content)?/.exec(path);
  if (fm) {
    const f = files.get(fm[1]);
    if (!f) return notFound(`such File object: ${fm[1]}`);
    if (fm[2]) return { status: 200, body: `contents of ${fm[1]}\n`, contentType: 'application/octet-stream' };
    if (method === 'DELETE') {
      files.delete(fm[1]);
      return { status: 200, body: { id: fm[1], object: 'file', deleted: true } };
    }
    return { status: 200, body: f };
  }
  if (path.endsWith('/moderations')) {
    return { status: 200, body: { id: 'modr-1', model: body.model ?? 'omni-moderation-latest', results: [{ flagged: false, categories: {}, category_scores: {} }] } };
  }
  if (path.endsWith('/images/generations')) {
    const n = typeof body.n === 'number' ? body.n : 1;
    return { status: 200, body: { created: 1700000000, data: Array.from({ length: n }, (_x, i) => ({ url: `https://images.example/${i}.png` })) } };
  }
  return notFound('route');
}
