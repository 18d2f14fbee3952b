/**
 * The runner's retry and scheduling policy, after Teleport's tbot: the same
 * numbers for every runtime (daemon, Durable Object, browser).
 *
 * @module
 */
import { type ErrorCode, isKeyboundError } from "../../errors.ts";

/** Attempts per identity renewal (Teleport: 7, backoff 1 s doubling). */
export const IDENTITY_ATTEMPTS = 7;
/** Attempts per output write and per heartbeat (Teleport: 5). */
export const OUTPUT_ATTEMPTS = 5;
/** Longest wait between retries while the bot has not renewed since it started. */
export const STARTUP_MAX_BACKOFF_MS = 60_000;

/** Error codes that no retry can fix; an admin has to act (see `refusal.ts`). */
const PERMANENT_CODES = new Set<ErrorCode>([
  "NO_RECOVERIES_REMAINING",
  "LOCKED",
  "JOIN_STATE_INVALID",
  "JOIN_STATE_REQUIRED",
  "ONBOARDING_WITH_CREDENTIALS",
  "TOKEN_STATE_CORRUPT",
  "STATIC_KEY_ROTATION",
  "GENERATION_MISMATCH",
  "REGISTRATION_SECRET_INVALID",
  "ACCESS_DENIED",
  "BAD_PARAMETER",
  "CONFIG_INVALID",
  "NOT_FOUND",
  "NOT_IMPLEMENTED",
]);

/**
 * Codes of a first contact that failed because the auth service is not (yet)
 * there or not ready: nothing listens, the name does not resolve, no answer
 * in time, a proxy without a backend, a backend still starting. A daemon
 * waits for these; anything else at first contact — a refusal, and above all
 * `TLS_UNTRUSTED` (a server that fails the pin or the CA: possibly an
 * impostor) — stops it with its message instead of being retried in silence.
 */
const NOT_THERE_YET = new Set<ErrorCode>([
  "CONNECTION_FAILED",
  "CONNECTION_RESET_BEFORE_SEND",
  "BACKEND_UNAVAILABLE",
  "RATE_LIMITED",
  "INTERNAL",
  "BAD_SERVER_RESPONSE",
]);

/**
 * True if a daemon's first contact that failed with `err` should be tried
 * again (see {@linkcode untilReachable}).
 *
 * @example
 * ```ts
 * import { KeyboundError } from "../../errors.ts";
 * serverNotThereYet(new KeyboundError("CONNECTION_FAILED", "connection refused")); // true
 * serverNotThereYet(new KeyboundError("TLS_UNTRUSTED", "matches none of the pins")); // false
 * ```
 */
export function serverNotThereYet(err: unknown): boolean {
  return isKeyboundError(err) && NOT_THERE_YET.has(err.code);
}

/**
 * True if retrying `err` soon may succeed (network trouble, a lost race, a 5xx).
 *
 * @example
 * ```ts
 * import { KeyboundError } from "../../errors.ts";
 * isRetryable(new TypeError("fetch failed")); // true
 * isRetryable(new KeyboundError("LOCKED", "locked")); // false
 * ```
 */
export function isRetryable(err: unknown): boolean {
  return !(isKeyboundError(err) && PERMANENT_CODES.has(err.code));
}

/**
 * Backoff before attempt `n + 1` after `n` failures within one iteration:
 * 1 s, 2 s, 4 s … plus up to 25 % jitter.
 *
 * @example
 * ```ts
 * backoffDelay(3, () => 0); // 4000
 * ```
 */
export function backoffDelay(failures: number, random: () => number): number {
  const base = 1000 * 2 ** (failures - 1);
  return base + random() * base / 4;
}

/**
 * Backoff after `n` failed tries while the bot has not renewed since it
 * started: 1 s doubling up to `max`, with half jitter (Teleport's startup
 * retry).
 *
 * @example
 * ```ts
 * startupBackoff(1, () => 0); // 500
 * ```
 */
export function startupBackoff(
  failures: number,
  random: () => number,
  max = STARTUP_MAX_BACKOFF_MS,
): number {
  const base = Math.min(max, 1000 * 2 ** (failures - 1));
  return base / 2 + random() * base / 2;
}

/**
 * `interval` shortened by up to a seventh, so many bots do not renew in step
 * (Teleport's SeventhJitter).
 *
 * @example
 * ```ts
 * jitteredInterval(20 * 60_000, () => 0); // 1_200_000
 * ```
 */
export function jitteredInterval(interval: number, random: () => number): number {
  return interval - random() * interval / 7;
}

/**
 * A one-line, secret-free description of an error for logs and `/readyz`.
 *
 * @example
 * ```ts
 * errorText(new Error("boom")); // "boom"
 * ```
 */
export function errorText(err: unknown): string {
  if (isKeyboundError(err)) return `${err.message} (${err.code})`;
  if (err instanceof Error) return err.message;
  return String(err);
}
