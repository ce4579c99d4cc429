/**
 * OpenAI chat request -> Anthropic Messages request: system and developer messages to the
 * top-level `system`, tool calls and results to tool_use / tool_result blocks, images
 * (data URLs to base64 sources, http(s) URLs to url sources), tools and tool_choice,
 * stop -> stop_sequences, max_tokens (defaulted from config), temperature, top_p,
 * response_format as an instruction in `system`.
 */
import { RequestTranslationError } from './types';

type Json = Record<string, unknown>;
type Block = Json;
type Message = { role: 'user' | 'assistant'; content: Block[] };

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Text of a system/developer message's content (a string or text parts). */
function plainText(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p: Json) => (p?.type === 'text' && typeof p.text === 'string' ? p.text : '')).join('');
  throw new RequestTranslationError('Message content must be a string or an array of content parts.', param);
}

/** One image part: a data URL becomes a base64 source, an http(s) URL a url source. */
function imageBlock(part: Json, param: string): Block {
  const url = str((part.image_url as Json | undefined)?.url) ?? '';
  const m = /^data:(image\/[a-z+.-]+);base64,(.*)$/is.exec(url);
  if (m) return { type: 'image', source: { type: 'base64', media_type: m[1].toLowerCase(), data: m[2] } };
  if (/^https?:\/\//i.test(url)) return { type: 'image', source: { type: 'url', url } };
  throw new RequestTranslationError('An image_url must be a data URL (data:image/...;base64,...) or an http(s) URL.', param);
}

function contentBlocks(content: unknown, param: string): Block[] {
  if (content === null || content === undefined) return [];
  if (typeof content === 'string') return content ? [{ type: 'text', text: content }] : [];
  if (!Array.isArray(content)) throw new RequestTranslationError('Message content must be a string or an array of content parts.', param);
  return content.map((part: Json, i) => {
    if (part?.type === 'text' && typeof part.text === 'string') return { type: 'text', text: part.text };
    if (part?.type === 'image_url') return imageBlock(part, `${param}[${i}]`);
    throw new RequestTranslationError(`Content part type "${String(part?.type)}" is not supported by this model's provider.`, `${param}[${i}]`);
  });
}

function toolUseBlocks(toolCalls: unknown, param: string): Block[] {
  if (!Array.isArray(toolCalls)) return [];
  return toolCalls.map((call: Json, i) => {
    const fn = (call?.function ?? {}) as Json;
    let input: unknown = {};
    try {
      input = typeof fn.arguments === 'string' && fn.arguments ? JSON.parse(fn.arguments) : {};
    } catch {
      throw new RequestTranslationError('Tool call arguments must be a JSON object.', `${param}[${i}].function.arguments`);
    }
    return { type: 'tool_use', id: str(call?.id) ?? `toolu_${i}`, name: str(fn.name) ?? '', input };
  });
}

/** Adds a message, merging it into the previous one of the same role (tool results follow one another). */
function push(out: Message[], role: Message['role'], content: Block[]): void {
  if (!content.length) return;
  const last = out[out.length - 1];
  if (last?.role === role) last.content.push(...content);
  else out.push({ role, content });
}

function translateMessages(messages: unknown): { system: string[]; messages: Message[] } {
  if (!Array.isArray(messages)) throw new RequestTranslationError('messages must be an array.', 'messages');
  const system: string[] = [];
  const out: Message[] = [];
  messages.forEach((m: Json, i) => {
    const param = `messages[${i}]`;
    switch (m?.role) {
      case 'system':
      case 'developer':
        system.push(plainText(m.content, `${param}.content`));
        break;
      case 'user':
        push(out, 'user', contentBlocks(m.content, `${param}.content`));
        break;
      case 'assistant':
        push(out, 'assistant', [...contentBlocks(m.content, `${param}.content`), ...toolUseBlocks(m.tool_calls, `${param}.tool_calls`)]);
        break;
      case 'tool':
        push(out, 'user', [{ type: 'tool_result', tool_use_id: str(m.tool_call_id) ?? '', content: plainText(m.content, `${param}.content`) }]);
        break;
      default:
        throw new RequestTranslationError(`Message role "${String(m?.role)}" is not supported by this model's provider.`, `${param}.role`);
    }
  });
  return { system, messages: out };
}

function translateTools(tools: unknown): Json[] | undefined {
  if (!Array.isArray(tools)) return undefined;
  return tools.map((t: Json, i) => {
    const fn = t?.function as Json | undefined;
    if (t?.type !== 'function' || !fn || typeof fn.name !== 'string') throw new RequestTranslationError("Only function tools are supported by this model's provider.", `tools[${i}]`);
    const tool: Json = { name: fn.name, input_schema: (fn.parameters as Json | undefined) ?? { type: 'object', properties: {} } };
    if (typeof fn.description === 'string') tool.description = fn.description;
    return tool;
  });
}

function translateToolChoice(choice: unknown, parallel: unknown): Json | undefined {
  let out: Json | undefined;
  if (choice === 'auto') out = { type: 'auto' };
  else if (choice === 'required') out = { type: 'any' };
  else if (choice === 'none') out = { type: 'none' };
  else if (choice && typeof choice === 'object') {
    const name = str(((choice as Json).function as Json | undefined)?.name);
    if (!name) throw new RequestTranslationError('tool_choice must name a function.', 'tool_choice');
    out = { type: 'tool', name };
  }
  if (parallel === false) out = { ...(out ?? { type: 'auto' }), disable_parallel_tool_use: true };
  return out;
}

/** response_format has no Anthropic counterpart: it becomes an instruction in `system`. */
function formatInstruction(format: unknown): string | undefined {
  const f = format as { type?: unknown; json_schema?: { schema?: unknown } } | undefined;
  if (f?.type === 'json_object') return 'Respond with a single JSON object and nothing else.';
  if (f?.type === 'json_schema') return `Respond with a single JSON object, and nothing else, that conforms to this JSON Schema: ${JSON.stringify(f.json_schema?.schema ?? {})}`;
  return undefined;
}

function stopSequences(stop: unknown): string[] | undefined {
  if (typeof stop === 'string') return [stop];
  if (Array.isArray(stop)) return stop.filter((s): s is string => typeof s === 'string');
  return undefined;
}

/** The Anthropic Messages request body for an OpenAI chat request. */
export function anthropicRequest(body: Json, upstreamModel: string, defaultMaxTokens: number, stream: boolean): Json {
  if (typeof body.n === 'number' && body.n > 1) throw new RequestTranslationError("n > 1 is not supported by this model's provider.", 'n');
  const { system, messages } = translateMessages(body.messages);
  const instruction = formatInstruction(body.response_format);
  if (instruction) system.push(instruction);
  const out: Json = { model: upstreamModel, max_tokens: body.max_completion_tokens ?? body.max_tokens ?? defaultMaxTokens, messages };
  if (system.length) out.system = system.join('\n\n');
  const stops = stopSequences(body.stop);
  if (stops?.length) out.stop_sequences = stops;
  if (typeof body.temperature === 'number') out.temperature = body.temperature;
  if (typeof body.top_p === 'number') out.top_p = body.top_p;
  const tools = translateTools(body.tools);
  if (tools) out.tools = tools;
  const choice = translateToolChoice(body.tool_choice, body.parallel_tool_calls);
  if (choice && tools) out.tool_choice = choice;
  if (typeof body.user === 'string') out.metadata = { user_id: body.user };
  if (stream) out.stream = true;
  return out;
}
