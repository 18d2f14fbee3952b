/**
 * The task metrics tbot exports, on the shared Prometheus primitives.
 *
 * @module
 */

import { exponentialBuckets, Metric } from "../util/prometheus.ts";

/** The metrics tbot exports. */
export class TbotMetrics {
  /** Every family, in output order. */
  readonly families: Metric[];
  /** Task iterations started. */
  readonly iterationsTotal = new Metric(
    "tbot_task_iterations_total",
    "Number of task iterations attempted.",
    "counter",
  );
  /** Task iterations that failed after every retry. */
  readonly iterationsFailed = new Metric(
    "tbot_task_iterations_failed",
    "Number of task iterations that failed after all retries.",
    "counter",
  );
  /** Retries before success (Teleport's buckets 0–5). */
  readonly iterationsSuccessful = new Metric(
    "tbot_task_iterations_successful",
    "Number of task iterations that succeeded, by retries needed.",
    "histogram",
    [0, 1, 2, 3, 4, 5],
  );
  /** Time per iteration, retries included. */
  readonly iterationDuration = new Metric(
    "tbot_task_iteration_duration_seconds",
    "Duration of task iterations in seconds, retries included.",
    "histogram",
    exponentialBuckets(0.1, 1.75, 6),
  );
  /** Expiry of the bot's current identity. */
  readonly identityExpiry = new Metric(
    "tbot_identity_expiry_timestamp_seconds",
    "Unix time at which the bot's current certificates expire.",
    "gauge",
  );
  /** Reload hook runs by result (`success`, `failure`, `timeout`). */
  readonly hookRuns = new Metric(
    "tbot_reload_hook_runs_total",
    "Number of on_renew reload hook runs, by result.",
    "counter",
  );
  /** Time a reload hook took (until exit, signal sent or kill at the timeout). */
  readonly hookDuration = new Metric(
    "tbot_reload_hook_duration_seconds",
    "Duration of on_renew reload hooks in seconds.",
    "histogram",
    exponentialBuckets(0.01, 4, 6),
  );
  /** Exit status of the last `exec` hook that exited. */
  readonly hookExitCode = new Metric(
    "tbot_reload_hook_last_exit_code",
    "Exit code of the last on_renew exec hook that exited.",
    "gauge",
  );
  /** Build information. */
  readonly buildInfo = new Metric("tbot_build_info", "Build information; always 1.", "gauge");

  /**
   * Registers every family.
   *
   * @param version agent version for `tbot_build_info`
   */
  constructor(version: string) {
    this.buildInfo.set({ version }, 1);
    this.families = [
      this.iterationsTotal,
      this.iterationsFailed,
      this.iterationsSuccessful,
      this.iterationDuration,
      this.identityExpiry,
      this.hookRuns,
      this.hookDuration,
      this.hookExitCode,
      this.buildInfo,
    ];
  }

  /** The whole exposition text. */
  render(): string {
    return this.families.map((m) => m.render()).join("");
  }
}
