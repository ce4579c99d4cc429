/**
 * Request bodies the size of real ones. LLM requests carry the conversation so far: agents and
 * chat with history send tens to hundreds of KB, mostly strings with newlines, quotes and code.
 * The gateway reads, checks, parses and re-serialises every byte of that; node-floor copies it.
 */
import { MODEL } from './targets';

const PROSE =
  'The quarterly report shows revenue grew in every region except the north, where supply issues delayed two launches.\n' +
  'Please summarise the main drivers and list the risks, with the figures you rely on.\n';
const CODE = 'function total(items) {\n  return items.reduce((s, i) => s + i.price * i.qty, 0); // "sum"\n}\nconsole.log("total:", total([{ price: 2, qty: 3 }]));\n';

/** How a phase's title names its bodies: nothing for the short prompt, else `, prompts of K KB`. */
export const promptLabel = (kb: number): string => (kb > 0 ? `, prompts of ${kb} KB` : '');

/**
 * A chat completion whose JSON body is about `kb` KB: a system message, then user and assistant
 * turns of prose, every third one code (0: one short sentence, the default body). `stream`: the
 * streamed form the first-byte phase sends (its short prompt asks for twenty numbered chunks).
 */
export function chatBodyOfSize(kb: number, stream = false): string {
  const tail = stream ? { max_tokens: 64, stream: true } : { max_tokens: 32 };
  if (kb <= 0) return JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: stream ? 'Count to twenty.' : 'Say hello in one short sentence.' }], ...tail });
  const messages = [{ role: 'system', content: 'You are a careful assistant. Answer in short paragraphs.' }];
  let size = 100;
  for (let i = 0; size < kb * 1024; i++) {
    const content = (i % 3 === 2 ? CODE : PROSE).repeat(4);
    messages.push({ role: i % 2 ? 'assistant' : 'user', content });
    size += JSON.stringify(content).length + 32;
  }
  return JSON.stringify({ model: MODEL, messages, ...tail });
}
