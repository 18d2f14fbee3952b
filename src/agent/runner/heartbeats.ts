/**
 * {@linkcode Heartbeats}: a runner's heartbeats. A job sends one every
 * {@linkcode HEARTBEAT_INTERVAL_MS} (the first marked as the startup one);
 * tbot's oneshot run sends one beside its outputs and waits for it at most
 * {@linkcode ONESHOT_HEARTBEAT_GRACE_MS}.
 *
 * @module
 */
import type { Logger } from "../../util/log.ts";
import type { Clock } from "../clock.ts";
import { HEARTBEAT_INTERVAL_MS, type HeartbeatBody } from "../heartbeat.ts";
import type { BotIdentity } from "../identity.ts";
import type { HealthReporter } from "../readiness.ts";
import { Job, type JobContext } from "./job.ts";
import type { RunnerOptions } from "./options.ts";
import { errorText, OUTPUT_ATTEMPTS } from "./policy.ts";
import type { SignedCall } from "./signed_call.ts";

/** How long the oneshot heartbeat may take before the run ends without it. */
export const ONESHOT_HEARTBEAT_GRACE_MS = 5_000;

/** Sends a runner's heartbeats: on their interval through {@linkcode job}, or once. */
export class Heartbeats {
  /** The job that sends one heartbeat per {@linkcode HEARTBEAT_INTERVAL_MS}. */
  readonly job: Job;
  #heartbeat: NonNullable<RunnerOptions["heartbeat"]>;
  #clock: Clock;
  #log: Logger;
  #startupSent = false;
  #startedAt: number;

  /**
   * Makes the heartbeat job; nothing is sent before the runner runs it.
   *
   * @param heartbeat transport and host facts
   * @param startedAt when the runner was made, ms (the body's uptime counts from it)
   * @param signedCall signs each heartbeat with the current certificate
   * @param health the heartbeat's readiness
   * @param ctx the runner's job context
   */
  constructor(
    heartbeat: NonNullable<RunnerOptions["heartbeat"]>,
    startedAt: number,
    signedCall: SignedCall,
    health: HealthReporter,
    ctx: JobContext,
  ) {
    this.#heartbeat = heartbeat;
    this.#clock = ctx.clock;
    this.#log = ctx.log;
    this.#startedAt = startedAt;
    const { send } = heartbeat;
    this.job = new Job({
      service: "heartbeat",
      name: "heartbeat",
      attempts: OUTPUT_ATTEMPTS,
      interval: HEARTBEAT_INTERVAL_MS,
      health,
      task: async (signal) => {
        await signedCall(
          "send a heartbeat",
          (identity) => send(identity, this.#heartbeatBody(false), signal),
        );
        this.#startupSent = true;
      },
      onFailure: (err) => ctx.log.warn("heartbeat failed", { error: errorText(err) }),
    }, ctx);
  }

  /** Sends one oneshot heartbeat; a failure or the grace running out is logged, not thrown. */
  async oneshot(identity: BotIdentity): Promise<void> {
    const job = this.job;
    const give = new AbortController();
    const timer = this.#clock.sleep(ONESHOT_HEARTBEAT_GRACE_MS, give.signal).then(() =>
      give.abort()
    );
    try {
      await this.#heartbeat.send(identity, this.#heartbeatBody(true), give.signal);
      job.spec.health?.healthy();
    } catch (err) {
      job.spec.health?.unhealthy(errorText(err));
      this.#log.warn("heartbeat failed", { error: errorText(err) });
    } finally {
      give.abort();
      await timer;
    }
  }

  #heartbeatBody(oneshot: boolean): HeartbeatBody {
    const host = this.#heartbeat.host;
    return {
      is_startup: !this.#startupSent,
      version: host.version,
      hostname: host.hostname,
      uptime_seconds: Math.floor((this.#clock.now().getTime() - this.#startedAt) / 1000),
      one_shot: oneshot,
      architecture: host.architecture,
      os: host.os,
    };
  }
}
