/**
 * The bot runner: one implementation of renewal scheduling (with jitter),
 * retries with exponential backoff, readiness, single-flight joins, output
 * writing and heartbeats, shared by every runtime that hosts a bot.
 *
 * ## Usage (for a new runtime)
 *
 * The runner never sleeps and knows nothing of files or processes. It keeps
 * a schedule and says "wake me at T" through a {@linkcode WakeTimer}; the
 * runtime arms a timer or an alarm and calls `tick()` when it fires.
 * Everything else comes in through {@linkcode RunnerOptions}:
 *
 * - `identity`: an `IdentityService` over the runtime's `AgentStorage`
 *   (files, Deno KV, Durable Object storage, IndexedDB) and its `fetch`;
 *   its `renew()` is the join entry point.
 * - `timer`: omit it to use `clock` timers (daemon, browser); a Durable
 *   Object passes `{ arm: (at) => at ? storage.setAlarm(at) : storage.deleteAlarm() }`
 *   and calls `tick()` from `alarm()`.
 * - `outputs`, `heartbeat`, `metrics`, `readiness`: optional.
 *
 * Then `await runner.start({ renewNow: true })` once; `renew()` for an
 * on-demand join (shared with one in flight), `validIdentity()` before using
 * the credentials, `status()` for a readiness answer, `stop()` at the end.
 *
 * @example A bot in a browser tab, woken by timers
 * ```ts ignore
 * import { BotRunner } from "./mod.ts";
 * import { createLogger } from "../../util/log.ts";
 *
 * declare const identity: import("./options.ts").IdentitySource;
 * const runner = new BotRunner({
 *   identity,
 *   renewalInterval: 20 * 60_000,
 *   log: createLogger({ component: "bot", write: console.log }),
 * });
 * await runner.start({ renewNow: true });
 * console.log(runner.status().status); // "healthy"
 * ```
 *
 * @example A Durable Object, woken by its alarm
 * ```ts ignore
 * const runner = new BotRunner({
 *   identity,
 *   renewalInterval,
 *   log,
 *   timer: { arm: (at) => at ? ctx.storage.setAlarm(at) : ctx.storage.deleteAlarm() },
 * });
 * // in alarm():
 * await runner.start({ renewNow: true }); // first activation
 * await runner.tick();
 * ```
 *
 * @module
 */
export { BotRunner } from "./runner.ts";
export { ONESHOT_HEARTBEAT_GRACE_MS } from "./heartbeats.ts";
export {
  type HeartbeatSender,
  type IdentitySource,
  type RunnerOptions,
  type RunnerStatus,
  type StartOptions,
} from "./options.ts";
export { type FirstContactOptions, untilReachable } from "./first_contact.ts";
export { ClockTimer, type WakeTimer } from "./timer.ts";
export { Wakeup } from "./wakeup.ts";
export {
  backoffDelay,
  errorText,
  IDENTITY_ATTEMPTS,
  isRetryable,
  jitteredInterval,
  OUTPUT_ATTEMPTS,
  serverNotThereYet,
  STARTUP_MAX_BACKOFF_MS,
  startupBackoff,
} from "./policy.ts";
