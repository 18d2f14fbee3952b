/**
 * A wake-up request (SIGHUP in the daemon, a button in a browser):
 * remembered until someone waits for it.
 *
 * @module
 */

/**
 * A wake-up that is remembered until someone waits for it.
 *
 * @example
 * ```ts
 * const w = new Wakeup();
 * w.fire(); // true: queued
 * await w.wait(new AbortController().signal); // resolves at once
 * ```
 */
export class Wakeup {
  #pending = false;
  #waiters: (() => void)[] = [];

  /** Wakes the waiter, or the next one to wait. Returns false if a wake-up was already queued. */
  fire(): boolean {
    if (this.#waiters.length > 0) {
      const waiters = this.#waiters;
      this.#waiters = [];
      waiters.forEach((w) => w());
      return true;
    }
    const wasPending = this.#pending;
    this.#pending = true;
    return !wasPending;
  }

  /** Resolves at the next wake-up (at once if one is queued) or when `signal` aborts. */
  wait(signal: AbortSignal): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        this.#waiters = this.#waiters.filter((w) => w !== done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.#waiters.push(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}
