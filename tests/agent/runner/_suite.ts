/**
 * The runner test suite every bot runtime passes: the same cases against
 * the daemon's timers (Deno, fake clock) and the Durable Object's alarm
 * (real workerd). A driver gives each case a bot over a
 * {@linkcode ScriptedIdentity} and a clock the test moves.
 *
 * @module
 */
import type { ErrorCode } from "../../../src/errors.ts";
import { assert, assertEquals, assertStringIncludes } from "../../_assert.ts";

/** One bot under test, however its runtime hosts it. */
export interface SuiteBot {
  /** Starts the runner (`renewNow` as the runtime's start does it). */
  start(renewNow: boolean): Promise<void>;
  /** Gives the bot a stored identity (before start). */
  store(generation: number): Promise<void>;
  /** Makes later joins fail with `code` (null: succeed). */
  failWith(code: ErrorCode | null): Promise<void>;
  /** Joins attempted and the most in flight at once. */
  joins(): Promise<{ joins: number; maxInFlight: number }>;
  /** Milliseconds from now to the armed wake-up, or null when none is armed. */
  wakeIn(): Promise<number | null>;
  /** Moves the clock to the armed wake-up, fires it and waits for the work it started. */
  fire(): Promise<void>;
  /** Readiness: status, reason, generation. */
  status(): Promise<{ status: string; reason?: string; generation?: number }>;
  /** `n` on-demand renewals at once; their generations or error codes. */
  renewTogether(n: number): Promise<(number | string)[]>;
  /** Stops the bot. */
  close(): Promise<void>;
}

/** Creates bots for the suite with `renewalInterval` ms. */
export type SuiteDriver = (renewalInterval: number) => Promise<SuiteBot>;

const INTERVAL = 20 * 60_000;

/** Fires the wake-ups until `done` holds (at most `max` times); returns the delays waited. */
async function fireUntil(bot: SuiteBot, done: () => Promise<boolean>, max = 20) {
  const waits: number[] = [];
  for (let i = 0; i < max && !await done(); i++) {
    const wait = await bot.wakeIn();
    assert(wait !== null, "no wake-up armed");
    waits.push(wait);
    await bot.fire();
  }
  return waits;
}

/** The cases, by name. */
export const runnerCases: Record<string, (driver: SuiteDriver) => Promise<void>> = {
  "scheduling: joins at start, then renews every renewal interval": async (driver) => {
    const bot = await driver(INTERVAL);
    try {
      await bot.start(true);
      assertEquals((await bot.status()).generation, 1);
      assertEquals((await bot.status()).status, "healthy");
      const wait = await bot.wakeIn();
      // Jitter only shortens the interval, by at most a seventh.
      assert(wait !== null && wait <= INTERVAL && wait >= INTERVAL * 6 / 7 - 1000, `${wait}`);
      await bot.fire();
      assertEquals((await bot.status()).generation, 2);
      assertEquals((await bot.joins()).joins, 2);
    } finally {
      await bot.close();
    }
  },

  "backoff: failed renewals retry after 1 s doubling, seven attempts, then unhealthy": async (
    driver,
  ) => {
    const bot = await driver(INTERVAL);
    try {
      await bot.start(true);
      await bot.fire(); // generation 2
      await bot.failWith("CONNECTION_FAILED");
      const before = (await bot.joins()).joins;
      await bot.fire(); // attempt 1 at the interval
      assertEquals((await bot.status()).status, "healthy", "one failed attempt is not an outage");
      const waits = await fireUntil(bot, async () => (await bot.status()).status === "unhealthy");
      assertEquals(waits.length, 6);
      waits.forEach((w, i) => {
        const base = 1000 * 2 ** i;
        assert(w >= base - 1000 && w <= base * 1.25 + 1000, `retry ${i + 1} after ${w} ms`);
      });
      assertEquals((await bot.joins()).joins - before, 7);
      const s = await bot.status();
      assertStringIncludes(s.reason ?? "", "(CONNECTION_FAILED)");
      const next = await bot.wakeIn();
      assert(next !== null && next >= INTERVAL * 6 / 7 - 1000, `next iteration in ${next}`);
    } finally {
      await bot.close();
    }
  },

  "backoff: a refusal no retry can fix is not retried": async (driver) => {
    const bot = await driver(INTERVAL);
    try {
      await bot.start(true);
      await bot.failWith("LOCKED");
      const before = (await bot.joins()).joins;
      await bot.fire();
      assertEquals((await bot.joins()).joins - before, 1);
      assertEquals((await bot.status()).status, "unhealthy");
      const next = await bot.wakeIn();
      assert(next !== null && next >= INTERVAL * 6 / 7 - 1000, `retried after ${next} ms`);
    } finally {
      await bot.close();
    }
  },

  "recovery: after an outage at startup the bot retries with capped backoff and recovers": async (
    driver,
  ) => {
    const bot = await driver(INTERVAL);
    try {
      await bot.store(4);
      await bot.failWith("CONNECTION_FAILED");
      await bot.start(true);
      assertEquals((await bot.status()).status, "unhealthy");
      const waits = await fireUntil(bot, async () => (await bot.joins()).joins >= 10);
      // Half jitter: between half and all of 1, 2, 4 … s, capped at a minute.
      waits.forEach((w, i) => {
        const base = Math.min(60_000, 1000 * 2 ** i);
        assert(w >= base / 2 - 1000 && w <= base + 1000, `retry ${i + 1} after ${w} ms`);
      });
      await bot.failWith(null);
      await bot.fire();
      const s = await bot.status();
      assertEquals(s.status, "healthy");
      assertEquals(s.generation, 5, "the stored identity is renewed, not replaced");
    } finally {
      await bot.close();
    }
  },

  "readiness: initializing, healthy, unhealthy with the reason, healthy again": async (driver) => {
    const bot = await driver(INTERVAL);
    try {
      assertEquals((await bot.status()).status, "initializing");
      await bot.failWith("CONNECTION_FAILED");
      await bot.start(false);
      const failed = await bot.status();
      assertEquals(failed.status, "unhealthy");
      assertStringIncludes(failed.reason ?? "", "CONNECTION_FAILED");
      await bot.failWith(null);
      await bot.fire();
      assertEquals((await bot.status()).status, "healthy");
      assertEquals((await bot.status()).reason, undefined);
    } finally {
      await bot.close();
    }
  },

  "single-flight: on-demand renewals at once share one join": async (driver) => {
    const bot = await driver(INTERVAL);
    try {
      await bot.start(true);
      const generations = await bot.renewTogether(5);
      assertEquals(new Set(generations).size, 1, JSON.stringify(generations));
      assertEquals(generations[0], 2);
      const { joins, maxInFlight } = await bot.joins();
      assertEquals(joins, 2);
      assertEquals(maxInFlight, 1);
    } finally {
      await bot.close();
    }
  },
};
