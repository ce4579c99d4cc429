/**
 * Anthropic Messages request (from an Anthropic-shaped client) -> OpenAI chat request, for
 * providers that speak OpenAI chat (or are translated from it): `system` to a system message,
 * text and image blocks to content parts, tool_use to tool_calls, tool_result to tool messages,
 * tools and tool_choice, stop_sequences, max_tokens, temperature, top_p, metadata.user_id.
 */
type Json = Record<string, any>;

const text = (content: unknown): string =>
  typeof content === 'string' ? content : Array.isArray(content) ? content.map((b: Json) => (b?.type === 'text' && typeof b.text === 'string' ? b.text : '')).join('') : '';

function imagePart(b: Json): Json {
  const s = b.source ?? {};
  const url = s.type === 'base64' ? `data:${s.media_type};base64,${s.data}` : String(s.url ?? '');
  return { type: 'image_url', image_url: { url } };
}

/** One Anthropic message as one or more chat messages (tool results become tool messages, first). */
function chatMessages(m: Json): Json[] {
  if (typeof m.content === 'string') return [{ role: m.role, content: m.content }];
  const blocks: Json[] = Array.isArray(m.content) ? m.content : [];
  if (m.role === 'assistant') {
    const calls = blocks.filter((b) => b?.type === 'tool_use').map((b) => ({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } }));
    const out: Json = { role: 'assistant', content: text(blocks) || null };
    if (calls.length) out.tool_calls = calls;
    return [out];
  }
  const tools = blocks.filter((b) => b?.type === 'tool_result').map((b) => ({ role: 'tool', tool_call_id: b.tool_use_id, content: text(b.content) }));
  const parts = blocks.filter((b) => b?.type === 'text' || b?.type === 'image').map((b) => (b.type === 'text' ? { type: 'text', text: b.text } : imagePart(b)));
  return parts.length ? [...tools, { role: 'user', content: parts }] : tools;
}

function toolChoice(c: Json | undefined): unknown {
  switch (c?.type) {
    case 'auto':
      return 'auto';
    case 'any':
      return 'required';
    case 'none':
      return 'none';
    case 'tool':
      return { type: 'function', function: { name: c.name } };
    default:
      return undefined;
  }
}

/** The chat request for an Anthropic Messages request; `model` is set per candidate by the caller. */
export function messagesToChat(body: Json): Json {
  const messages: Json[] = [];
  const system = text(body.system);
  if (system) messages.push({ role: 'system', content: system });
  for (const m of Array.isArray(body.messages) ? body.messages : []) messages.push(...chatMessages(m));
  const out: Json = { model: body.model, messages, max_tokens: body.max_tokens };
  if (Array.isArray(body.stop_sequences) && body.stop_sequences.length) out.stop = body.stop_sequences;
  if (typeof body.temperature === 'number') out.temperature = body.temperature;
  if (typeof body.top_p === 'number') out.top_p = body.top_p;
  if (Array.isArray(body.tools)) {
    out.tools = body.tools.map((t: Json) => ({
      type: 'function',
      function: { name: t.name, ...(t.description ? { description: t.description } : {}), parameters: t.input_schema ?? { type: 'object' } },
    }));
    const choice = toolChoice(body.tool_choice);
    if (choice) out.tool_choice = choice;
    if (body.tool_choice?.disable_parallel_tool_use === true) out.parallel_tool_calls = false;
  }
  if (typeof body.metadata?.user_id === 'string') out.user = body.metadata.user_id;
  if (body.stream === true) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  return out;
}
