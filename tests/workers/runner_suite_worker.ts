/**
 * Test Worker: the real `BotIdentity` Durable Object with its join replaced
 * by a scripted one and its clock by one the test moves, so the shared
 * runner suite runs against the object's alarm in workerd. Only time and the
 * join are fake: the alarm, its handler and the RPC methods are the real ones.
 *
 * @module
 */
import type { Clock } from "../../src/agent/clock.ts";
import type { ErrorCode } from "../../src/errors.ts";
import type { BotEnv } from "../../runtime-adapters/workers/bot_config.ts";
import { BotIdentity, type RunnerSeams } from "../../runtime-adapters/workers/bot_identity_do.ts";
import { ScriptedIdentity } from "../agent/runner/_scripted_identity.ts";

/** Test time starts a year ahead, so the alarms the runner arms never fire on their own. */
const YEAR_MS = 365 * 24 * 3600_000;

/** The bot under the suite; test time stands still until {@linkcode SuiteBot.fireAlarm} moves it. */
export class SuiteBot extends BotIdentity {
  #offset = Date.now() + YEAR_MS;
  #alarms = 0;
  #clock: Clock = {
    now: () => new Date(this.#offset),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
  #identity = new ScriptedIdentity(() => this.#clock.now().getTime());

  protected override runnerSeams(): RunnerSeams {
    return { identity: this.#identity, clock: this.#clock };
  }

  override async alarm(): Promise<void> {
    await super.alarm();
    this.#alarms++;
  }

  /** Gives the bot a stored identity. */
  store(generation: number): void {
    this.#identity.store(generation);
  }

  /** Makes later joins fail with `code`. */
  failWith(code: ErrorCode | null): void {
    this.#identity.failWith = code;
  }

  /** Join counts. */
  joins(): { joins: number; maxInFlight: number; inFlight: number } {
    const i = this.#identity;
    return { joins: i.joins, maxInFlight: i.maxInFlight, inFlight: i.inFlight };
  }

  /** Milliseconds of test time to the armed alarm. */
  async wakeIn(): Promise<number | null> {
    const at = await this.ctx.storage.getAlarm();
    return at === null ? null : at - this.#clock.now().getTime();
  }

  /**
   * Moves test time to the armed alarm (if one is armed) and lets workerd
   * fire it now; resolves with the number of alarms handled before.
   */
  async fireAlarm(): Promise<number> {
    const wait = await this.wakeIn();
    if (wait !== null && wait > 0) this.#offset += wait;
    const before = this.#alarms;
    await this.ctx.storage.setAlarm(Date.now());
    return before;
  }

  /** Alarms handled so far. */
  alarmsHandled(): number {
    return this.#alarms;
  }

  /** `n` RPC renewals at once while the join is held; generations or error codes. */
  async renewTogether(n: number): Promise<(number | string)[]> {
    this.#identity.hold();
    const all = Promise.all(Array.from({ length: n }, () => this.renew()));
    await new Promise((r) => setTimeout(r, 20));
    this.#identity.release();
    return (await all).map((r) => r.ok ? r.generation : r.error.code);
  }
}

export default {
  fetch(_request: Request, _env: BotEnv): Response {
    return new Response("runner suite", { status: 404 });
  },
};
