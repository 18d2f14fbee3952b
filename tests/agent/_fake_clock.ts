/**
 * A clock for tests of the agent's loops: time moves only when told to.
 *
 * @module
 */
import type { Clock } from "../../src/agent/clock.ts";

/** A clock that moves only when told to; for tests of loops and expiry. */
export class FakeClock implements Clock {
  #now: number;
  #sleepers: { at: number; resolve: () => void }[] = [];

  /** @param start initial time */
  constructor(start: Date = new Date("2026-01-01T00:00:00Z")) {
    this.#now = start.getTime();
  }

  now(): Date {
    return new Date(this.#now);
  }

  /** Number of sleeps waiting to be woken. */
  get pendingSleeps(): number {
    return this.#sleepers.length;
  }

  /** Durations still to go of the pending sleeps, shortest first. */
  get pendingDelays(): number[] {
    return this.#sleepers.map((s) => s.at - this.#now).sort((a, b) => a - b);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const sleeper = { at: this.#now + Math.max(0, ms), resolve };
      const abort = () => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        resolve();
      };
      sleeper.resolve = () => {
        signal?.removeEventListener("abort", abort);
        resolve();
      };
      signal?.addEventListener("abort", abort, { once: true });
      this.#sleepers.push(sleeper);
    });
  }

  /** Moves time forward, waking every sleep that falls due, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      const due = this.#sleepers.filter((s) => s.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#sleepers = this.#sleepers.filter((s) => s !== due);
      this.#now = Math.max(this.#now, due.at);
      due.resolve();
      // Let the woken task run until it sleeps again or finishes.
      await settle();
    }
    this.#now = target;
    await settle();
  }
}

/** Yields to pending promise callbacks and timers a few times. */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setTimeout(r, 0));
}
