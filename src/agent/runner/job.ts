/**
 * One task of the runner (the identity renewal, an output, the heartbeat) as
 * a small state machine: each call to {@linkcode Job.run} makes one attempt
 * and sets the time of the next one in `due`. Nothing here waits: retries
 * and intervals become wake-up times, so a Durable Object can sleep between
 * them on an alarm.
 *
 * @module
 */
import type { Logger } from "../../util/log.ts";
import type { Clock } from "../clock.ts";
import type { TbotMetrics } from "../metrics.ts";
import type { HealthReporter } from "../readiness.ts";
import {
  backoffDelay,
  errorText,
  isRetryable,
  jitteredInterval,
  startupBackoff,
} from "./policy.ts";

/** What a job does and how it is retried. */
export interface JobSpec {
  /** Service name (metrics label `service`, readiness name). */
  service: string;
  /** Task name (metrics label `name`, logs). */
  name: string;
  /** The work; `signal` aborts when the runner stops. */
  task: (signal: AbortSignal) => Promise<void>;
  /** Attempts per iteration, with {@linkcode backoffDelay} between them. */
  attempts: number;
  /** Time between iterations (jittered); without one, the job runs only when made due. */
  interval?: number;
  /**
   * Until its first success every failed try is a failed iteration, retried
   * after {@linkcode startupBackoff} (the identity renewal at startup).
   */
  untilFirstSuccess?: boolean;
  /** Health reporting, if registered. */
  health?: HealthReporter;
  /** Called with the error of a failed iteration; defaults to an error log line. */
  onFailure?: (err: unknown) => void;
}

/** What every job shares. */
export interface JobContext {
  /** Time source. */
  clock: Clock;
  /** Random source in [0, 1) for jitter. */
  random: () => number;
  /** Logger. */
  log: Logger;
  /** Metrics, if exported. */
  metrics?: TbotMetrics;
  /** Aborts when the runner stops. */
  signal: AbortSignal;
}

/** A task's schedule and retry state. */
export class Job {
  /** Next attempt, epoch ms; null when nothing is scheduled. */
  due: number | null = null;
  /** The error of the last failed iteration; cleared by a success. */
  lastError: unknown = undefined;
  /** The error of the last failed attempt. */
  lastAttemptError: unknown = undefined;
  /** True once an attempt has succeeded. */
  succeeded = false;
  readonly spec: JobSpec;
  #ctx: JobContext;
  #running: Promise<boolean> | null = null;
  #attempt = 0;
  #iterationStart = 0;
  #startupFailures = 0;

  /**
   * @param spec what to run
   * @param ctx shared dependencies
   */
  constructor(spec: JobSpec, ctx: JobContext) {
    this.spec = spec;
    this.#ctx = ctx;
  }

  /** True while an attempt is in flight. */
  get running(): boolean {
    return this.#running !== null;
  }

  /**
   * Makes one attempt (or joins the one in flight). Resolves true on
   * success; never throws the task's error.
   */
  run(): Promise<boolean> {
    if (this.#running) return this.#running;
    this.due = null;
    const run = this.#attemptOnce();
    this.#running = run;
    run.finally(() => this.#running = null);
    return run;
  }

  #labels() {
    return { service: this.spec.service, name: this.spec.name };
  }

  #now(): number {
    return this.#ctx.clock.now().getTime();
  }

  #nextIteration(): number | null {
    return this.spec.interval === undefined
      ? null
      : this.#now() + Math.ceil(jitteredInterval(this.spec.interval, this.#ctx.random));
  }

  async #attemptOnce(): Promise<boolean> {
    const { metrics } = this.#ctx;
    if (this.#attempt === 0) {
      this.#iterationStart = this.#now();
      metrics?.iterationsTotal.inc(this.#labels());
    }
    this.#attempt++;
    this.#ctx.log.debug(`${this.spec.name} running`, {
      service: this.spec.service,
      attempt: this.#attempt,
    });
    try {
      await this.spec.task(this.#ctx.signal);
    } catch (err) {
      this.#failed(err);
      return false;
    }
    metrics?.iterationsSuccessful.observe(this.#labels(), this.#attempt - 1);
    this.#observeDuration();
    this.spec.health?.healthy();
    this.#attempt = 0;
    this.#startupFailures = 0;
    this.succeeded = true;
    this.lastError = undefined;
    this.due = this.#nextIteration();
    return true;
  }

  #observeDuration() {
    this.#ctx.metrics?.iterationDuration.observe(
      this.#labels(),
      (this.#now() - this.#iterationStart) / 1000,
    );
  }

  #failed(err: unknown) {
    const { random, log } = this.#ctx;
    this.lastAttemptError = err;
    if (this.spec.untilFirstSuccess && !this.succeeded) {
      this.#iterationFailed(err);
      this.due = this.#now() + Math.ceil(startupBackoff(++this.#startupFailures, random));
      return;
    }
    if (isRetryable(err) && this.#attempt < this.spec.attempts) {
      const delay = backoffDelay(this.#attempt, random);
      log.warn(`${this.spec.name} failed; retrying`, {
        service: this.spec.service,
        attempt: this.#attempt,
        of: this.spec.attempts,
        retry_in_seconds: Math.round(delay / 100) / 10,
        error: errorText(err),
      });
      // Whole milliseconds: clocks and alarms count in them.
      this.due = this.#now() + Math.ceil(delay);
      return;
    }
    this.#iterationFailed(err);
    this.due = this.#nextIteration();
  }

  #iterationFailed(err: unknown) {
    this.#ctx.metrics?.iterationsFailed.inc(this.#labels());
    this.#observeDuration();
    this.spec.health?.unhealthy(errorText(err));
    this.lastError = err;
    this.#attempt = 0;
    if (this.spec.onFailure) this.spec.onFailure(err);
    else {
      this.#ctx.log.error(`${this.spec.name} failed`, {
        service: this.spec.service,
        error: errorText(err),
      });
    }
  }
}
