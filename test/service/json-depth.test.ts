/**
 * The nesting check every JSON request body passes before it is parsed (http/body.ts): it skips
 * strings with String#indexOf, so it must agree with the plain scan of one character at a time it
 * replaced on every input, escaped quotes and unterminated strings included.
 */
import assert from 'node:assert/strict';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../../service/http/body';
import { mulberry32 } from '../helpers/random';

/** The reference: one character at a time, a backslash in a string skipping the one after it. */
function oneAtATime(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const b = text.charCodeAt(i);
    if (inString) {
      if (b === 0x5c) i++;
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x7b || b === 0x5b) {
      if (++depth > limit) return true;
    } else if (b === 0x7d || b === 0x5d) depth--;
  }
  return false;
}

const exceeds = (text: string, limit = 2) => jsonDepthExceeds(text, limit);

describe('jsonDepthExceeds (the request body nesting check)', () => {
  it('counts objects and arrays, up to the limit and one past it', () => {
    assert.equal(exceeds('[[]]'), false);
    assert.equal(exceeds('[{}]'), false);
    assert.equal(exceeds('[[[]]]'), true);
    assert.equal(exceeds('{"a":{"b":{"c":1}}}'), true);
    assert.equal(exceeds('[[]][[]][[]]'), false, 'depth, not the number of brackets');
    const nest = (n: number) => '['.repeat(n) + ']'.repeat(n);
    assert.equal(jsonDepthExceeds(nest(MAX_JSON_DEPTH), MAX_JSON_DEPTH), false);
    assert.equal(jsonDepthExceeds(nest(MAX_JSON_DEPTH + 1), MAX_JSON_DEPTH), true);
  });

  it('ignores brackets inside strings, past escaped quotes and escaped backslashes', () => {
    assert.equal(exceeds('["[[[[{{{{"]'), false);
    assert.equal(exceeds('["a\\"[[[[ still in the string"]'), false, 'an escaped quote does not end the string');
    assert.equal(exceeds('["a\\\\",[[[]]]]'), true, 'an escaped backslash before the quote: the string ends there');
    assert.equal(exceeds('["a\\\\\\"[[[["]'), false, 'three backslashes: the quote is escaped');
    assert.equal(exceeds('["\\\\\\\\",[[1]]]'), true, 'four backslashes: the quote closes');
    assert.equal(exceeds('"[[[['), false, 'an unterminated string holds the rest');
    assert.equal(exceeds('[[["abc'), true, 'the depth reached before an unterminated string counts');
  });

  it('agrees with the scan of one character at a time on 50,000 seeded random texts of brackets, quotes, backslashes and letters', () => {
    const rand = mulberry32(26);
    const alphabet = '{}[]"\\\\a ';
    for (let n = 0; n < 50_000; n++) {
      let text = '';
      const length = Math.floor(rand() * 40);
      for (let i = 0; i < length; i++) text += alphabet[Math.floor(rand() * alphabet.length)];
      for (const limit of [0, 1, 2, 4]) assert.equal(jsonDepthExceeds(text, limit), oneAtATime(text, limit), `${JSON.stringify(text)} at limit ${limit}`);
    }
  });

  it('agrees with it on a long conversation with code, quotes and non-ASCII text', () => {
    const content = 'Résumé: `if (a["k"] === "\\"x\\"") { return [1, [2]]; }`\n'.repeat(200);
    const body = JSON.stringify({ model: 'm', messages: Array.from({ length: 30 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content })) });
    for (const limit of [2, 3, 64]) assert.equal(jsonDepthExceeds(body, limit), oneAtATime(body, limit));
    assert.equal(jsonDepthExceeds(body, 2), true);
    assert.equal(jsonDepthExceeds(body, 3), false);
  });
});
