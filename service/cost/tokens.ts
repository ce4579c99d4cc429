/**
 * Token estimation for when an upstream returns no usage (the cost is then marked estimated).
 * Uses gpt-tokenizer's o200k_base encoding (GPT-4o family); for other model families it is
 * an approximation, which is what "estimated" means.
 */
import type { countTokens as CountTokens } from 'gpt-tokenizer';

/**
 * The tokenizer is loaded on first use: its o200k_base tables add ~70 MB of RSS and ~150 ms
 * of start-up, and most deployments never need them (providers report usage, and the gateway
 * asks for it on streams). Only an upstream that omits usage pays for the load, once.
 */
let countTokensImpl: typeof CountTokens | undefined;
const countTokens = (text: string): number => {
  countTokensImpl ??= (require('gpt-tokenizer') as typeof import('gpt-tokenizer')).countTokens;
  return countTokensImpl(text);
};

/** Per-message and reply-priming overheads of the chat format (OpenAI's published counting recipe). */
const TOKENS_PER_MESSAGE = 3;
const TOKENS_PER_NAME = 1;
const REPLY_PRIMING = 3;

export function estimateTokens(text: string): number {
  if (!text) return 0;
  try {
    return countTokens(text);
  } catch {
    // Text the tokenizer refuses (e.g. special-token strings): fall back to ~4 characters a token.
    return Math.ceil(text.length / 4);
  }
}

/** Text of a chat message content: a string, or an array of parts whose text parts count. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((part) => (part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string' ? (part as { text: string }).text : '')).join('\n');
  }
  return '';
}

/** Completions `prompt`, embeddings `input`, or Responses `input` (a string, or items whose content has text parts). */
function inputText(input: unknown): string {
  if (typeof input === 'string') return input;
  if (Array.isArray(input)) {
    return input
      .map((x) => (typeof x === 'string' ? x : x && typeof x === 'object' ? contentText((x as { content?: unknown }).content) : ''))
      .filter(Boolean)
      .join('\n');
  }
  return '';
}

/**
 * Prompt tokens of a request body: chat `messages` (with tool calls and `tools` definitions),
 * completions `prompt`, or embeddings `input`.
 */
export function estimatePromptTokens(body: Record<string, unknown>): number {
  if (Array.isArray(body.messages)) {
    let n = REPLY_PRIMING;
    for (const msg of body.messages as Array<Record<string, unknown>>) {
      if (!msg || typeof msg !== 'object') continue;
      n += TOKENS_PER_MESSAGE + estimateTokens(contentText(msg.content));
      if (typeof msg.name === 'string') n += TOKENS_PER_NAME + estimateTokens(msg.name);
      if (Array.isArray(msg.tool_calls)) n += estimateTokens(JSON.stringify(msg.tool_calls));
    }
    if (Array.isArray(body.tools)) n += estimateTokens(JSON.stringify(body.tools));
    return n;
  }
  if (body.prompt !== undefined) return estimateTokens(inputText(body.prompt));
  if (body.input !== undefined || typeof body.instructions === 'string') {
    const instructions = typeof body.instructions === 'string' ? estimateTokens(body.instructions) : 0;
    return instructions + estimateTokens(inputText(body.input));
  }
  return 0;
}

/** Completion tokens of generated text (for a stream: the concatenated deltas). */
export function estimateCompletionTokens(text: string): number {
  return estimateTokens(text);
}
