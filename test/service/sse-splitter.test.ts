/**
 * The incremental SSE splitter (core/sse.ts) against the reference it replaces (EVENT_END run
 * over the whole buffer): the same events, for every terminator form, whatever the piece
 * boundaries (seeded random splits, including single characters and terminators cut in
 * two); and the cap: an event over it sets `overflow`, the events before it still come out.
 */
import assert from 'node:assert/strict';
import { EVENT_END, SseSplitter } from '../../service/core/sse';
import { mulberry32 } from '../helpers/random';

/** The old way: rescan the whole pending text for EVENT_END. */
function reference(text: string): { events: string[]; rest: string } {
  const events: string[] = [];
  let pending = text;
  for (let m = EVENT_END.exec(pending); m; m = EVENT_END.exec(pending)) {
    events.push(pending.slice(0, m.index));
    pending = pending.slice(m.index + m[0].length);
  }
  return { events, rest: pending };
}

const STREAM = [
  'data: {"a":1}\n\n',
  'event: x\r\ndata: y\r\n\r\n',
  'data: z\r\n\n',
  ': keep-alive\n\r\n',
  'data: \n\n',
  '\n\n',
  'data: multi\ndata: line\n\n',
  'data: tail-without-terminator\r\n',
].join('');

describe('SseSplitter: incremental, same events as the EVENT_END rescan', () => {
  const random = mulberry32(22);
  for (let round = 0; round < 200; round++) {
    const cuts = round === 0 ? [...STREAM].map((_c, i) => i + 1) : Array.from({ length: 1 + Math.floor(random() * 8) }, () => Math.floor(random() * STREAM.length)).sort((a, b) => a - b);
    it(`split ${round === 0 ? 'into single characters' : `at ${cuts.join(',')}`}`, () => {
      const s = new SseSplitter();
      const bodies: string[] = [];
      const raws: string[] = [];
      let at = 0;
      for (const c of [...cuts, STREAM.length]) {
        for (const e of s.push(STREAM.slice(at, c))) {
          bodies.push(e.body);
          raws.push(e.raw);
        }
        at = Math.max(at, c);
      }
      const want = reference(STREAM);
      assert.deepEqual(bodies, want.events);
      assert.equal(raws.join('') + s.rest(), STREAM, 'raw events and the rest are the stream, byte for byte');
    });
  }

  it('an event over the cap sets overflow; the complete events before it are returned, nothing is kept after', () => {
    const s = new SseSplitter(100);
    const events = s.push(`data: ok\n\ndata: ${'x'.repeat(200)}`);
    assert.deepEqual(
      events.map((e) => e.body),
      ['data: ok'],
    );
    assert.equal(s.overflow, true);
    assert.deepEqual(s.push('\n\ndata: later\n\n'), []);
    assert.equal(s.rest(), '');
  });

  it('an event growing over the cap across pushes sets overflow without a terminator', () => {
    const s = new SseSplitter(100);
    for (let i = 0; i < 10 && !s.overflow; i++) assert.deepEqual(s.push('y'.repeat(30)), []);
    assert.equal(s.overflow, true);
  });

  it('a complete event of exactly the cap passes', () => {
    const s = new SseSplitter(10);
    assert.deepEqual(
      s.push('data: 12\n\n').map((e) => e.body),
      ['data: 12'],
    );
    assert.equal(s.overflow, false);
  });
});
