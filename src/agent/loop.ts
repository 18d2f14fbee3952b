/**
 * Periodic tasks with retries, after Teleport's `RunOnInterval`: each
 * iteration is retried with exponential backoff; when the attempts run out
 * the task is reported unhealthy and the loop waits for the next interval
 * instead of exiting. A wake-up (SIGHUP) starts an iteration at once.
 *
 * @module
 */
import { isKeyboundError } from "../errors.ts";
import type { Logger } from "../util/log.ts";
import type { Clock } from "./clock.ts";
import type { TbotMetrics } from "./metrics.ts";
import type { HealthReporter } from "./readiness.ts";

/** Error codes that no retry can fix; an admin has to act (see `refusal.ts`). */
const PERMANENT_CODES = new Set([
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

/** True if retrying `err` soon may succeed (network trouble, a lost race, a 5xx). */
export function isRetryable(err: unknown): boolean {
  return !(isKeyboundError(err) && PERMANENT_CODES.has(err.code));
}

/** A wake-up that is remembered until someone waits for it. */
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

/** Options of {@linkcode runIteration} and {@linkcode runOnInterval}. */
export interface TaskOptions {
  /** Service name (metrics label `service`, readiness name). */
  service: string;
  /** Task name (metrics label `name`, logs). */
  name: string;
  /** The work. */
  task: () => Promise<void>;
  /** Attempts per iteration (Teleport: 7 for the identity, 5 for outputs). */
  attempts: number;
  /** Time source. */
  clock: Clock;
  /** Random source in [0, 1) for jitter. */
  random: () => number;
  /** Logger. */
  log: Logger;
  /** Stops the loop (and any wait) when aborted. */
  signal: AbortSignal;
  /** Metrics, if exported. */
  metrics?: TbotMetrics;
  /** Health reporting, if registered. */
  health?: HealthReporter;
  /** Called with the last error when an iteration fails; defaults to an error log line. */
  onFailure?: (err: unknown) => void;
}

/** Backoff before attempt `n + 1` after `n` failures: 1 s, 2 s, 4 s … plus up to 25 % jitter. */
export function backoffDelay(failures: number, random: () => number): number {
  const base = 1000 * 2 ** (failures - 1);
  return base + random() * base / 4;
}

/**
 * Runs one iteration: up to `attempts` tries with exponential backoff, no
 * retry for permanent refusals. Reports health and metrics. Returns true on
 * success; never throws the task's error.
 */
export async function runIteration(o: TaskOptions): Promise<boolean> {
  const labels = { service: o.service, name: o.name };
  const started = o.clock.now().getTime();
  o.metrics?.iterationsTotal.inc(labels);
  let lastError: unknown;
  for (let attempt = 1; attempt <= o.attempts && !o.signal.aborted; attempt++) {
    try {
      await o.task();
      o.metrics?.iterationsSuccessful.observe(labels, attempt - 1);
      o.metrics?.iterationDuration.observe(labels, (o.clock.now().getTime() - started) / 1000);
      o.health?.healthy();
      return true;
    } catch (err) {
      lastError = err;
      if (!isRetryable(err) || attempt === o.attempts) break;
      const delay = backoffDelay(attempt, o.random);
      o.log.warn(`${o.name} failed; retrying`, {
        service: o.service,
        attempt,
        of: o.attempts,
        retry_in_seconds: Math.round(delay / 100) / 10,
        error: errorText(err),
      });
      await o.clock.sleep(delay, o.signal);
    }
  }
  if (o.signal.aborted && lastError === undefined) return false;
  o.metrics?.iterationsFailed.inc(labels);
  o.metrics?.iterationDuration.observe(labels, (o.clock.now().getTime() - started) / 1000);
  o.health?.unhealthy(errorText(lastError));
  if (o.onFailure) o.onFailure(lastError);
  else o.log.error(`${o.name} failed`, { service: o.service, error: errorText(lastError) });
  return false;
}

/** Options of {@linkcode runOnInterval}. */
export interface IntervalOptions extends TaskOptions {
  /** Time between iterations, before jitter. */
  interval: number;
  /** Starts an iteration early. */
  wakeup?: Wakeup;
}

/** `interval` shortened by up to a seventh, so many bots do not renew in step (Teleport's SeventhJitter). */
export function jitteredInterval(interval: number, random: () => number): number {
  return interval - random() * interval / 7;
}

/**
 * Runs the task every interval (the first run after one interval, as in
 * Teleport) until `signal` aborts. Failed iterations never end the loop.
 */
export async function runOnInterval(o: IntervalOptions): Promise<void> {
  while (!o.signal.aborted) {
    await waitFor(o.clock, jitteredInterval(o.interval, o.random), o.signal, o.wakeup);
    if (o.signal.aborted) return;
    await runIteration(o);
  }
}

/** Waits `ms`, or until the wake-up fires or `signal` aborts. */
export async function waitFor(
  clock: Clock,
  ms: number,
  signal: AbortSignal,
  wakeup?: Wakeup,
): Promise<void> {
  const done = new AbortController();
  const onStop = () => done.abort();
  signal.addEventListener("abort", onStop, { once: true });
  try {
    await Promise.race([
      clock.sleep(ms, done.signal),
      ...(wakeup ? [wakeup.wait(done.signal)] : []),
    ]);
  } finally {
    done.abort();
    signal.removeEventListener("abort", onStop);
  }
}

/**
 * Retries `task` until it succeeds or `signal` aborts, with backoff from 1 s
 * doubling up to `maxDelay` and half jitter: what Teleport does when the
 * first renewal at startup fails. A wake-up retries at once.
 */
export async function retryUntilSuccess(
  o: Omit<TaskOptions, "attempts"> & { maxDelay: number; wakeup?: Wakeup },
): Promise<boolean> {
  for (let failures = 0; !o.signal.aborted; failures++) {
    if (failures > 0) {
      const base = Math.min(o.maxDelay, 1000 * 2 ** (failures - 1));
      await waitFor(o.clock, base / 2 + o.random() * base / 2, o.signal, o.wakeup);
      if (o.signal.aborted) return false;
    }
    if (await runIteration({ ...o, attempts: 1 })) return true;
  }
  return false;
}

/** A one-line, secret-free description of an error for logs and `/readyz`. */
export function errorText(err: unknown): string {
  if (isKeyboundError(err)) return `${err.message} (${err.code})`;
  if (err instanceof Error) return err.message;
  return String(err);
}
