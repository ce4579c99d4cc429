/**
 * A stream's kept text (core/sse.ts appendOutput): every delta appended in order, whatever the
 * pieces (empty, multi-byte, surrogate pairs), through the copy into a flat string every
 * FLATTEN_EVERY pieces; and the chat, Responses and translated-stream accumulators that use it.
 * What the copy saves is a memory figure: `npm run bench -- --stream-text`.
 */
import assert from 'node:assert/strict';
import { appendOutput, EventSummary, FLATTEN_EVERY, flatCopy, inspectEvent, KeptText } from '../../service/core/sse';
import { mulberry32 } from '../helpers/random';

const ALPHABET = ['a', 'é', '字', '😀', ' ', '\n', '"', '\\', ''];

function randomPieces(seed: number, count: number): string[] {
  const rnd = mulberry32(seed);
  return Array.from({ length: count }, () => Array.from({ length: Math.floor(rnd() * 6) }, () => ALPHABET[Math.floor(rnd() * ALPHABET.length)]).join(''));
}

describe("a stream's kept text (appendOutput)", () => {
  it('holds every piece in order across many copies, and counts pieces since the last copy', () => {
    for (const seed of [1, 2, 3]) {
      const pieces = randomPieces(seed, 40 * FLATTEN_EVERY + 7);
      const kept: KeptText = { outputText: '' };
      pieces.forEach((p, i) => {
        appendOutput(kept, p);
        assert.equal(kept.outputPieces, (i + 1) % FLATTEN_EVERY);
      });
      assert.equal(kept.outputText, pieces.join(''));
    }
  });

  it('copies a rope into an equal string', () => {
    let rope = '';
    for (const p of randomPieces(9, 500)) rope += p;
    assert.equal(flatCopy(rope), rope);
    assert.equal(flatCopy(''), '');
  });

  it('keeps the text of a chat stream and a Responses stream as inspectEvent reads them', () => {
    const pieces = randomPieces(5, 3 * FLATTEN_EVERY + 1);
    const chat: EventSummary = { outputText: '', sawDone: false };
    const responses: EventSummary = { outputText: '', sawDone: false };
    for (const p of pieces) {
      assert.equal(inspectEvent(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: p } }] })}`, false, chat), 'forward');
      assert.equal(inspectEvent(`event: response.output_text.delta\ndata: ${JSON.stringify({ type: 'response.output_text.delta', delta: p })}`, false, responses), 'forward');
    }
    assert.equal(chat.outputText, pieces.join(''));
    assert.equal(responses.outputText, pieces.join(''));
  });
});
