/**
 * Spend keys with team hash tags (service/cost/spend.ts) on a real redis-server: spend of the
 * release before them (spend:<day>, budget:<team>:<month>) still counts until it expires, and
 * the apply script takes each writer's batches for a team once and in order.
 */
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { APPLY_LUA, budgetKey, entryBatch, RedisSpendStore, spendRowKey } from '../../service/cost/spend';
import { RedisServer, startRedis } from '../helpers/redis-server';
import { ready } from './fixtures';

describe('spend keys with team hash tags', function () {
  this.timeout(20_000);
  let server: RedisServer;
  let redis: Redis;
  before(async () => {
    server = await startRedis();
    redis = new Redis({ host: server.host, port: server.port, maxRetriesPerRequest: 0 });
    await ready(redis);
  });
  after(async () => {
    redis?.disconnect();
    await server?.close();
  });

  const entry = (team: string, costUsd: number) => ({
    day: '2026-12-04',
    month: '2026-12',
    team,
    project: 'web',
    provider: 'p',
    model: 'm',
    costUsd,
    listCostUsd: costUsd,
    cached: false,
    estimated: false,
    promptTokens: 10,
    completionTokens: 5,
  });

  it('every key of a team carries its tag; budgets and reports add in the keys of the release before', async () => {
    await redis.flushall();
    const store = new RedisSpendStore(redis);
    await store.apply(entryBatch(entry('red', 0.5)), 'w1', 1);
    assert.equal(budgetKey('red', '2026-12'), 'budget:{t:red}:2026-12');
    assert.equal(spendRowKey('red', '2026-12-04'), 'spend:{t:red}:2026-12-04');
    for (const k of (await redis.keys('*')).filter((k) => k !== 'spend-teams:2026-12-04')) assert.match(k, /\{t:red\}/);
    // What the release before wrote this month.
    await redis.hset('budget:red:2026-12', 'm', String(0.25e9), 'd:2026-12-04', String(0.25e9));
    await redis.hset('spend:2026-12-04', 'red|web|p|m|c', String(0.25e9), 'red|web|p|m|r', '1');
    assert.deepEqual(await store.readBudget('red', '2026-12-04', '2026-12'), { day: 0.75e9, month: 0.75e9 });
    const [day] = await store.readDays(['2026-12-04']);
    assert.equal(day['red|web|p|m|c'], String(0.75e9));
    assert.equal(day['red|web|p|m|r'], '2');
  });

  it('the apply script: a batch once; a later batch refused with GAP while the previous one is missing, unless told not to check', async () => {
    await redis.flushall();
    const run = (seq: number, prev: number) => redis.eval(APPLY_LUA, 2, 'spend:{t:red}:seq:w', 'spend:{t:red}:2026-12-04', seq, 60, prev, 60, 1, 'f', 1);
    assert.equal(await run(1, 0), 1, 'first batch: no sequence yet');
    assert.equal(await run(1, 0), 0, 'the same batch again: skipped');
    await assert.rejects(run(3, 2), /GAP/, 'batch 2 is not applied yet');
    assert.equal(await run(2, 1), 1);
    assert.equal(await run(3, 2), 1, 'now in order');
    assert.equal(await run(5, -1), 1, 'batch 4 was acknowledged (then lost): not waited for');
    assert.equal(await redis.hget('spend:{t:red}:2026-12-04', 'f'), '4');
  });
});
