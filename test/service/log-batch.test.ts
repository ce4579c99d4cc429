/**
 * The log's destination (service/telemetry/log-batch.ts): the lines written within its delay of
 * the first reach sonic-boom as one write, in order; a flush hands over what is pending; and a
 * process that exits right after logging (process.exit in the same turn) still writes its lines.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { LineBatch, LogSink } from '../../service/telemetry/log-batch';

function recordingSink(): LogSink & { writes: string[]; flushes: number; syncFlushes: number } {
  return {
    writes: [],
    flushes: 0,
    syncFlushes: 0,
    write(text: string) {
      this.writes.push(text);
    },
    flush(cb?: () => void) {
      this.flushes++;
      cb?.();
    },
    flushSync() {
      this.syncFlushes++;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('log lines batched per event-loop turn (LineBatch)', () => {
  it('the lines written within the delay of the first are one write, in order; later lines are another', async () => {
    const sink = recordingSink();
    const batch = new LineBatch(sink, 30);
    batch.write('a\n');
    batch.write('b\n');
    await sleep(5);
    batch.write('c\n');
    assert.deepEqual(sink.writes, [], 'nothing is written before the delay');
    await sleep(60);
    assert.deepEqual(sink.writes, ['a\nb\nc\n']);
    batch.write('d\n');
    await sleep(60);
    assert.deepEqual(sink.writes, ['a\nb\nc\n', 'd\n']);
    await sleep(60);
    assert.equal(sink.writes.length, 2, 'no empty write when nothing is pending');
  });

  it('flush and flushSync hand over the pending lines first', async () => {
    const sink = recordingSink();
    const batch = new LineBatch(sink, 10);
    batch.write('x\n');
    await new Promise<void>((resolve) => batch.flush(() => resolve()));
    assert.deepEqual(sink.writes, ['x\n']);
    assert.equal(sink.flushes, 1);
    batch.write('y\n');
    batch.flushSync();
    assert.deepEqual(sink.writes, ['x\n', 'y\n']);
    assert.equal(sink.syncFlushes, 1);
    await sleep(30);
    assert.equal(sink.writes.length, 2, 'the scheduled hand-over finds nothing left');
  });

  it("the gateway's stdout destination: a logger that logs and exits in the same turn still writes its lines", () => {
    const script = `
      const pino = require('pino');
      const { stdoutLineBatch } = require(${JSON.stringify(join(__dirname, '../../service/telemetry/log-batch'))});
      const logger = pino({ base: null }, stdoutLineBatch(10));
      for (let i = 0; i < 3; i++) logger.info({ i }, 'line');
      process.exit(0);
    `;
    const out = spawnSync(process.execPath, ['-r', 'tsx/cjs', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(out.status, 0, out.stderr);
    const lines = out.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { i: number; msg: string });
    assert.deepEqual(
      lines.map((l) => [l.i, l.msg]),
      [
        [0, 'line'],
        [1, 'line'],
        [2, 'line'],
      ],
    );
  });
});
