/**
 * Admission answers at once (a value, not a promise) when no limit or budget has to ask a store,
 * waits only when one must, and refuses with a rejected promise, never a throw.
 */
import assert from 'node:assert/strict';
import { all, outcome, then } from '../../service/core/maybe-async';
import { GatewayError } from '../../service/core/errors';
import { createTenancy } from '../../service/tenancy/tenancy';
import { KEYS, newMetrics, settlement, testConfig } from './fixtures';

describe('maybe-async', () => {
  it('then: applies now to a value, later to a promise', async () => {
    assert.equal(
      then(2, (x) => x + 1),
      3,
    );
    const later = then(Promise.resolve(2), (x) => x + 1);
    assert.ok(later instanceof Promise);
    assert.equal(await later, 3);
  });

  it('outcome: a value, a throw, a resolved and a rejected promise', async () => {
    assert.deepEqual(
      outcome(() => 1),
      { ok: true, value: 1 },
    );
    const boom = new Error('boom');
    assert.deepEqual(
      outcome(() => {
        throw boom;
      }),
      { ok: false, err: boom },
    );
    assert.deepEqual(await outcome(() => Promise.resolve(1)), { ok: true, value: 1 });
    assert.deepEqual(await outcome(() => Promise.reject(boom)), { ok: false, err: boom });
  });

  it('all: an array at once when nothing is pending, else a promise of every value in order', async () => {
    assert.deepEqual(all([1, 2]), [1, 2]);
    const mixed = all([1, Promise.resolve(2), 3]);
    assert.ok(mixed instanceof Promise);
    assert.deepEqual(await mixed, [1, 2, 3]);
  });
});

describe('admission fast path', () => {
  it('limits in memory: the admission and the provider quota are values; a refusal is a rejection', async () => {
    const config = testConfig({ rate_limit: { requests_per_minute: 2 } });
    const tenancy = createTenancy(config, { redis: null, metrics: newMetrics() });
    const alice = tenancy.authenticate(`Bearer ${KEYS.alice}`);
    const first = tenancy.admit(alice, 'gpt-x', 10, 0);
    assert.ok(!(first instanceof Promise), 'no store to ask: admitted at once');
    assert.equal(first.headers['x-ratelimit-remaining-requests'], '1');
    assert.ok(!(tenancy.admit(alice, 'gpt-x', 10, 0) instanceof Promise));
    const refused = tenancy.admit(alice, 'gpt-x', 10, 0);
    assert.ok(refused instanceof Promise, 'a refusal is a rejected promise, not a throw');
    await assert.rejects(refused, (e: GatewayError) => e.status === 429 && e.headers['x-ratelimit-remaining-requests'] === '0');
    const quota = tenancy.admitProvider('cheap');
    assert.equal(quota, true, 'the provider quota too');
    tenancy.close();
  });

  it('a budget waits for its spend to be read (twice: the second read measures the spend rate); then answers at once', async () => {
    const config = testConfig({ teams: [{ name: 'red', budget: { daily_usd: 1 } }, { name: 'blue' }] });
    let t = Date.UTC(2026, 11, 4, 12);
    const tenancy = createTenancy(config, { redis: null, metrics: newMetrics(), now: () => t });
    const alice = tenancy.authenticate(`Bearer ${KEYS.alice}`);
    const first = tenancy.admit(alice, 'gpt-x', 10, 0.000001);
    assert.ok(first instanceof Promise, 'the spend is read first');
    const a = await first;
    assert.ok(a.reservation?.budget, 'the budget holds the request');
    t += 10;
    const second = tenancy.admit(alice, 'gpt-x', 10, 0.000001);
    assert.ok(second instanceof Promise, 'no rate yet: read again');
    await second;
    t += 10;
    const third = tenancy.admit(alice, 'gpt-x', 10, 0.000001);
    assert.ok(!(third instanceof Promise), 'spend and rate known: admitted at once');
    assert.equal(third.reservation?.budget?.nano, a.reservation.budget.nano);
    tenancy.settle(settlement(alice, 2, { at: t })); // at the test's clock: booked on its day, whatever the date today
    const over = tenancy.admit(alice, 'gpt-x', 10, 0.000001);
    assert.ok(over instanceof Promise, 'a refusal is a rejected promise, not a throw');
    await assert.rejects(over, (e: GatewayError) => e.status === 402 || e.status === 429);
    tenancy.close();
  });
});
