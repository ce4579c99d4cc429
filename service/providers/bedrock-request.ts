/**
 * OpenAI chat request -> Bedrock Converse request. The chat request is first expressed in
 * Anthropic's Messages shape (anthropic-request.ts: system, merged roles, tool_use and
 * tool_result, tools, tool_choice, stop sequences), then mapped block by block to Converse:
 * text, image (base64 bytes), toolUse, toolResult; inferenceConfig; toolConfig.
 */
import { anthropicRequest } from './anthropic-request';
import { RequestTranslationError } from './types';

type Json = Record<string, any>;

const IMAGE_FORMATS = new Set(['png', 'jpeg', 'gif', 'webp']);

function converseBlock(b: Json): Json {
  switch (b.type) {
    case 'text':
      return { text: b.text };
    case 'tool_use':
      return { toolUse: { toolUseId: b.id, name: b.name, input: b.input } };
    case 'tool_result':
      return { toolResult: { toolUseId: b.tool_use_id, content: [{ text: b.content }] } };
    case 'image': {
      const format = String(b.source?.media_type ?? '')
        .replace(/^image\//, '')
        .replace('jpg', 'jpeg');
      if (b.source?.type !== 'base64' || !IMAGE_FORMATS.has(format)) throw new RequestTranslationError('Bedrock takes images as data URLs of png, jpeg, gif or webp.', 'messages');
      return { image: { format, source: { bytes: b.source.data } } };
    }
    default:
      throw new RequestTranslationError(`Content of type "${String(b.type)}" is not supported by this model's provider.`, 'messages');
  }
}

function toolChoice(c: Json | undefined): Json | undefined {
  if (c?.type === 'auto') return { auto: {} };
  if (c?.type === 'any') return { any: {} };
  if (c?.type === 'tool') return { tool: { name: c.name } };
  return undefined; // none: Converse has no such choice; the tools are still listed
}

/** The Converse body for an OpenAI chat request (the model is in the path). */
export function converseRequest(body: Json): Json {
  const a = anthropicRequest(body, '', 0, false);
  const out: Json = { messages: (a.messages as Json[]).map((m) => ({ role: m.role, content: (m.content as Json[]).map(converseBlock) })) };
  if (a.system) out.system = [{ text: a.system }];
  const inference: Json = {};
  const max = body.max_completion_tokens ?? body.max_tokens;
  if (typeof max === 'number') inference.maxTokens = max;
  if (typeof a.temperature === 'number') inference.temperature = a.temperature;
  if (typeof a.top_p === 'number') inference.topP = a.top_p;
  if (a.stop_sequences) inference.stopSequences = a.stop_sequences;
  if (Object.keys(inference).length) out.inferenceConfig = inference;
  if (Array.isArray(a.tools)) {
    const tools = (a.tools as Json[]).map((t) => ({ toolSpec: { name: t.name, ...(t.description ? { description: t.description } : {}), inputSchema: { json: t.input_schema } } }));
    const choice = toolChoice(a.tool_choice as Json | undefined);
    out.toolConfig = choice ? { tools, toolChoice: choice } : { tools };
  }
  return out;
}
