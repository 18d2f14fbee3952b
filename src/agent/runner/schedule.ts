/**
 * {@linkcode JobSchedule}: when a {@linkcode BotRunner}'s jobs run. It runs
 * the jobs that are due, keeps the identity renewal single-flight (with the
 * outputs that follow it), and arms one wake-up for the earliest job still
 * due; the runtime's {@linkcode WakeTimer} fires it.
 *
 * @module
 */
import type { Logger } from "../../util/log.ts";
import type { Clock } from "../clock.ts";
import type { Job } from "./job.ts";
import { errorText } from "./policy.ts";
import { ClockTimer, type WakeTimer } from "./timer.ts";

/** A runner's jobs: the identity renewal, the outputs and the heartbeat (if sent). */
export interface RunnerJobs {
  /** The identity renewal. */
  identity: Job;
  /** One job per output. */
  outputs: Job[];
  /** The heartbeat, or null when none is sent. */
  heartbeat: Job | null;
}

/** Runs a runner's jobs when they are due and arms the next wake-up. */
export class JobSchedule {
  #clock: Clock;
  #log: Logger;
  #signal: AbortSignal;
  #timer: WakeTimer;
  #identityJob: Job;
  #identityRun: Promise<boolean> | null = null;
  #outputJobs: Job[];
  #heartbeatJob: Job | null;
  /** While the first join waits for the server, that wait paces the retries, not the timer. */
  holdTimer = false;
  #wakeQueued = false;
  #armedAt: number | null | undefined = undefined;

  /**
   * Schedules a runner's jobs; nothing runs before the runner arms or ticks.
   *
   * @param jobs the runner's jobs
   * @param clock time source
   * @param log logger
   * @param signal aborts when the runner stops
   * @param timer arms the wake-up (default: a timer on `clock`)
   */
  constructor(jobs: RunnerJobs, clock: Clock, log: Logger, signal: AbortSignal, timer?: WakeTimer) {
    this.#clock = clock;
    this.#log = log;
    this.#signal = signal;
    this.#timer = timer ?? new ClockTimer(this.#clock, () => this.#tickInBackground());
    this.#identityJob = jobs.identity;
    this.#outputJobs = jobs.outputs;
    this.#heartbeatJob = jobs.heartbeat;
  }

  /**
   * Runs every task that is due, then arms the next wake-up. Resolves when
   * the tasks it started have finished (a Durable Object's alarm awaits it).
   */
  async tick(): Promise<void> {
    if (this.#signal.aborted) return;
    this.#armedAt = undefined;
    const now = this.#clock.now().getTime();
    const due = (j: Job) => j.due !== null && j.due <= now && !j.running;
    const started: Promise<unknown>[] = [];
    if (due(this.#identityJob) && !this.#identityRun) started.push(this.renewRun());
    for (const job of this.#others()) {
      if (due(job)) started.push(job.run().finally(() => this.arm()));
    }
    await this.arm();
    await Promise.all(started);
  }

  /** Makes the renewal due now (a reload signal) and runs it. */
  async wake(): Promise<void> {
    // A wake-up during a renewal asks for another one after it, as a queued signal would.
    if (this.#identityRun) this.#wakeQueued = true;
    else this.#identityJob.due = this.#clock.now().getTime();
    await this.arm();
  }

  /** Makes the renewal due now unless one is in flight, and arms the wake-up. */
  async renewalDueNow(): Promise<void> {
    if (!this.#identityRun) this.#identityJob.due = this.#clock.now().getTime();
    await this.arm();
  }

  /** The next scheduled wake-up, or null. */
  nextWake(): Date | null {
    const at = this.#nextDue();
    return at === null ? null : new Date(at);
  }

  /** Disarms the wake-up and waits for the work in flight (which the runner's stop aborts). */
  async stop(): Promise<void> {
    await this.#timer.arm(null);
    await Promise.allSettled([
      this.#identityRun,
      ...this.#others().filter((j) => j.running).map((j) => j.run()),
    ]);
  }

  #others(): Job[] {
    return this.#heartbeatJob ? [...this.#outputJobs, this.#heartbeatJob] : this.#outputJobs;
  }

  /**
   * One identity attempt, then the outputs that follow it (all of them the
   * first time); shares the one in flight. Resolves false if the attempt failed.
   */
  renewRun(): Promise<boolean> {
    if (this.#identityRun) return this.#identityRun;
    const first = !this.#identityJob.succeeded;
    const run = (async () => {
      if (!await this.#identityJob.run()) return false;
      // Side by side: a slow destination or reload hook never holds up the others.
      await Promise.all(
        this.#outputJobs.filter((job) => first || job.spec.interval === undefined)
          .map((job) => job.run()),
      );
      if (first && this.#heartbeatJob) this.#heartbeatJob.due = this.#clock.now().getTime();
      return true;
    })();
    this.#identityRun = run;
    return run.finally(async () => {
      this.#identityRun = null;
      if (this.#wakeQueued) {
        this.#wakeQueued = false;
        this.#identityJob.due = this.#clock.now().getTime();
      }
      await this.arm();
    });
  }

  /** A tick nobody awaits: a failure to arm the next wake-up is logged, not lost. */
  #tickInBackground(): void {
    this.tick().catch((err) =>
      this.#log.error("cannot arm the next wake-up", { error: errorText(err) })
    );
  }

  #nextDue(): number | null {
    const dues = [this.#identityJob, ...this.#others()]
      .filter((j) =>
        j.due !== null && !(j.running || (j === this.#identityJob && this.#identityRun))
      )
      .map((j) => j.due!);
    return dues.length ? Math.min(...dues) : null;
  }

  /** Arms the wake-up for the earliest job still due, or runs it now if it is due already. */
  async arm(): Promise<void> {
    if (this.#signal.aborted || this.holdTimer) return;
    const at = this.#nextDue();
    const busy = this.#identityRun !== null || this.#others().some((j) => j.running);
    // While a task runs, its completion arms what comes next.
    if ((at === null && busy) || at === this.#armedAt) return;
    if (at !== null && at <= this.#clock.now().getTime()) {
      // Due already: run it now rather than through a timer that may need time to pass.
      this.#armedAt = undefined;
      this.#tickInBackground();
      return;
    }
    this.#armedAt = at;
    if (at !== null) {
      this.#log.debug("next run scheduled", {
        tasks: [this.#identityJob, ...this.#others()].filter((j) => j.due === at)
          .map((j) => j.spec.name).join(","),
        in_seconds: Math.round((at - this.#clock.now().getTime()) / 1000),
        at: new Date(at).toISOString(),
      });
    }
    await this.#timer.arm(at === null ? null : new Date(at));
  }
}
