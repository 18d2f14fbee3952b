/**
 * How the runner is woken: it says "wake me at T" and the runtime arms a
 * timer (daemon, browser) or an alarm (Durable Object), then calls
 * `BotRunner.tick()` when it fires.
 *
 * @module
 */
import type { Clock } from "../clock.ts";

/** Arms the runtime's one wake-up; `null` disarms it. */
export interface WakeTimer {
  /** Arms the wake-up for `at` (replacing any earlier one), or disarms it. */
  arm(at: Date | null): void | Promise<void>;
}

/**
 * A {@linkcode WakeTimer} on a {@linkcode Clock}'s cancellable sleep: what the
 * daemon and the browser use. `fire` runs when the time comes.
 *
 * @example
 * ```ts
 * import { systemClock } from "../clock.ts";
 * const timer = new ClockTimer(systemClock, () => console.log("due"));
 * timer.arm(new Date(Date.now() + 10));
 * timer.arm(null); // cancelled
 * ```
 */
export class ClockTimer implements WakeTimer {
  #clock: Clock;
  #fire: () => void;
  #armed: AbortController | null = null;

  /**
   * @param clock time source
   * @param fire called when an armed time comes
   */
  constructor(clock: Clock, fire: () => void) {
    this.#clock = clock;
    this.#fire = fire;
  }

  arm(at: Date | null): void {
    this.#armed?.abort();
    this.#armed = null;
    if (at === null) return;
    const armed = new AbortController();
    this.#armed = armed;
    this.#clock.sleep(at.getTime() - this.#clock.now().getTime(), armed.signal).then(() => {
      if (armed.signal.aborted) return;
      this.#armed = null;
      this.#fire();
    });
  }
}
