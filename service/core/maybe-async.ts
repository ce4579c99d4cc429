/**
 * Decisions that usually need no I/O (a leased limit window, a budget whose spend is known)
 * answer at once, and only their slow path waits. An `async` function would put every answer
 * behind a promise and a microtask turn, several per request along the admission chain.
 */
export type MaybePromise<T> = T | Promise<T>;

/** `f` of the value: now when it is there, else once it resolves. */
export function then<T, U>(v: MaybePromise<T>, f: (value: T) => MaybePromise<U>): MaybePromise<U> {
  return v instanceof Promise ? v.then(f) : f(v);
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; err: unknown };

/** What `f` gave or threw, now or once it settles (Promise.allSettled's entry for one call, without a promise on the fast path). */
export function outcome<T>(f: () => MaybePromise<T>): MaybePromise<Outcome<T>> {
  try {
    const v = f();
    return v instanceof Promise
      ? v.then(
          (value): Outcome<T> => ({ ok: true, value }),
          (err: unknown): Outcome<T> => ({ ok: false, err }),
        )
      : { ok: true, value: v };
  } catch (err) {
    return { ok: false, err };
  }
}

/** Every value: at once when none is pending, else Promise.all's. */
export function all<T>(vs: Array<MaybePromise<T>>): MaybePromise<T[]> {
  for (const v of vs) if (v instanceof Promise) return Promise.all(vs);
  return vs as T[];
}
