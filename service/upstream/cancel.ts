/**
 * A cancellation flag for one request or one upstream attempt, cheaper than AbortController:
 * Node builds an EventTarget for every AbortSignal (it was the costliest function of the
 * gateway's own in a CPU profile, two per request). undici accepts any object with
 * addEventListener/removeEventListener as `signal`, and so does timers/promises, so this plain
 * object with one listener list serves both.
 */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export class Cancel implements CancelSignal {
  aborted = false;
  private listeners: Array<() => void> | null = null;

  /** The signal side (the same object), named as on AbortController. */
  get signal(): CancelSignal {
    return this;
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.listeners;
    this.listeners = null;
    if (listeners) for (const l of listeners) l();
  }

  /** Listeners run once, on abort (as with `{ once: true }`). */
  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return;
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const l = this.listeners;
    if (!l) return;
    const i = l.indexOf(listener);
    if (i >= 0) l.splice(i, 1);
  }
}
