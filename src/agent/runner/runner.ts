/**
 * {@linkcode BotRunner}: keeps a bot's identity renewed, its outputs written
 * and its heartbeats sent, on any runtime. See `mod.ts` for how a runtime
 * drives it.
 *
 * @module
 */
import { isKeyboundError, KeyboundError } from "../../errors.ts";
import { type Clock, systemClock } from "../clock.ts";
import type { BotIdentity } from "../identity.ts";
import { ReadinessRegistry } from "../readiness.ts";
import { untilReachable } from "./first_contact.ts";
import { Heartbeats } from "./heartbeats.ts";
import { Job, type JobContext } from "./job.ts";
import type { RunnerOptions, RunnerStatus, StartOptions } from "./options.ts";
import { initOutputs, outputJob } from "./outputs.ts";
import { errorText, IDENTITY_ATTEMPTS, jitteredInterval } from "./policy.ts";
import { JobSchedule } from "./schedule.ts";
import { requireIdentity, type SignedCall, signedCall } from "./signed_call.ts";

/**
 * One bot runner for every runtime: renewal with jitter, retries with
 * backoff, readiness, single-flight joins, outputs and heartbeats.
 */
export class BotRunner {
  #o: RunnerOptions;
  #clock: Clock;
  #random: () => number;
  #readiness: ReadinessRegistry;
  #stop = new AbortController();
  #ctx: JobContext;
  #identityJob: Job;
  #outputJobs: Job[];
  #heartbeats: Heartbeats | null = null;
  #schedule: JobSchedule;
  #signedCall: SignedCall;
  #started = false;
  #quietFailure = false;
  #startedAt: number;
  #lastRenewal: Date | null = null;

  /** @param options dependencies and runtime hooks */
  constructor(options: RunnerOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#readiness = options.readiness ?? new ReadinessRegistry(() => this.#clock.now());
    this.#startedAt = this.#clock.now().getTime();
    this.#ctx = {
      clock: this.#clock,
      random: this.#random,
      log: options.log,
      signal: this.#stop.signal,
      ...(options.metrics ? { metrics: options.metrics } : {}),
    };
    this.#signedCall = signedCall(options.identity, () => this.#schedule.renewalDueNow());
    this.#identityJob = new Job({
      service: "identity",
      name: "bot-identity-renewal",
      attempts: IDENTITY_ATTEMPTS,
      interval: options.renewalInterval,
      untilFirstSuccess: true,
      health: this.#readiness.register("identity"),
      task: async () => {
        await options.identity.renew();
        this.#lastRenewal = this.#clock.now();
      },
      onFailure: (err) => {
        if (!this.#quietFailure) options.log.error(this.#describe(err), { service: "identity" });
      },
    }, this.#ctx);
    this.#outputJobs = (options.outputs ?? []).map((out) =>
      outputJob(out, this.#signedCall, this.#readiness.register(out.name), this.#ctx)
    );
    if (options.heartbeat) {
      this.#heartbeats = new Heartbeats(
        options.heartbeat,
        this.#startedAt,
        this.#signedCall,
        this.#readiness.register("heartbeat"),
        this.#ctx,
      );
    }
    this.#schedule = new JobSchedule(
      {
        identity: this.#identityJob,
        outputs: this.#outputJobs,
        heartbeat: this.#heartbeats?.job ?? null,
      },
      this.#clock,
      options.log,
      this.#stop.signal,
      options.timer,
    );
  }

  /** Service health, as `/readyz` reports it. */
  get readiness(): ReadinessRegistry {
    return this.#readiness;
  }

  /**
   * Prepares the outputs and either renews now or schedules the renewal.
   * Throws the refusal if `requireIdentity` is set and the bot has no
   * identity after a failed first renewal. Runs once; later calls return.
   */
  async start(options: StartOptions = {}): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await initOutputs(this.#o.outputs ?? []);
    const identity = this.#o.identity;
    if (!options.renewNow && identity.hasValidIdentity()) {
      this.#identityJob.due = options.due?.getTime() ??
        this.#clock.now().getTime() +
          Math.ceil(jitteredInterval(this.#o.renewalInterval, this.#random));
      await this.#schedule.arm();
      return;
    }
    const fatalIfFailed = !!options.requireIdentity && !identity.identity;
    this.#quietFailure = fatalIfFailed;
    let ok: boolean;
    try {
      if (fatalIfFailed && options.waitForServer) {
        this.#schedule.holdTimer = true;
        // A failure it does not wait for is thrown below, with its advice.
        ok = await untilReachable(async () => {
          if (!await this.#schedule.renewRun()) throw this.#identityJob.lastAttemptError;
          return true;
        }, {
          clock: this.#clock,
          random: this.#random,
          log: this.#o.log,
          signal: this.#stop.signal,
          describe: (err) => this.#describe(err),
        }).catch(() => false) ?? false;
      } else ok = await this.#schedule.renewRun();
    } finally {
      this.#quietFailure = false;
      this.#schedule.holdTimer = false;
    }
    await this.#schedule.arm();
    if (ok || this.#stop.signal.aborted) return;
    if (fatalIfFailed && !identity.identity) {
      await this.stop();
      const cause = this.#identityJob.lastError;
      throw new KeyboundError(
        cause instanceof KeyboundError ? cause.code : "CONNECTION_FAILED",
        this.#describe(cause),
        { cause },
      );
    }
    if (identity.identity) {
      this.#o.log.warn("keeping the stored identity and retrying in the background");
    }
  }

  /**
   * Runs every task that is due, then arms the next wake-up. Resolves when
   * the tasks it started have finished (a Durable Object's alarm awaits it).
   */
  tick(): Promise<void> {
    return this.#schedule.tick();
  }

  /**
   * Renews now, sharing a renewal already in flight (single-flight: the
   * server never sees two joins of this bot at once). Throws the join's error.
   */
  async renew(): Promise<BotIdentity> {
    if (!await this.#schedule.renewRun()) throw this.#identityJob.lastAttemptError;
    return requireIdentity(this.#o.identity, "renew");
  }

  /** The identity if it is valid, otherwise a renewal (shared as in {@linkcode renew}). */
  async validIdentity(): Promise<BotIdentity> {
    const identity = this.#o.identity;
    if (identity.hasValidIdentity() && identity.identity) return identity.identity;
    return await this.renew();
  }

  /**
   * Runs a call signed with `identity` (from {@linkcode validIdentity}) for a
   * runtime's own requests. If the server answers `CA_KEY_DROPPED` (a
   * completed CA rotation dropped the key that issued the certificate), the
   * certificate is given up, the bot recovers with its bound key, and the
   * call is made once more with the new identity.
   */
  async retryIfKeyDropped<T>(
    identity: BotIdentity,
    call: (identity: BotIdentity) => Promise<T>,
  ): Promise<T> {
    try {
      return await call(identity);
    } catch (e) {
      const source = this.#o.identity;
      if (!isKeyboundError(e, "CA_KEY_DROPPED") || !source.dropCertificate) throw e;
      if (source.identity === identity) source.dropCertificate(e.message);
      return await call(await this.validIdentity());
    }
  }

  /** Makes the renewal due now (a reload signal) and runs it. */
  wake(): Promise<void> {
    return this.#schedule.wake();
  }

  /** The next scheduled wake-up, or null. */
  nextWake(): Date | null {
    return this.#schedule.nextWake();
  }

  /** The bot's state, for a readiness endpoint. */
  status(): RunnerStatus {
    const identity = this.#o.identity.identity;
    const valid = this.#o.identity.hasValidIdentity();
    const failed = this.#identityJob.lastError;
    const common = { identity, lastRenewal: this.#lastRenewal, nextWake: this.nextWake() };
    if (failed !== undefined) {
      return { status: "unhealthy", reason: this.#describe(failed), ...common };
    }
    if (identity && !valid) {
      return { status: "unhealthy", reason: "the bot's certificate has expired", ...common };
    }
    return { status: identity ? "healthy" : "initializing", ...common };
  }

  /**
   * One run and out (tbot's oneshot): renew, then write every output once
   * while one heartbeat travels (waited for at most
   * {@linkcode ONESHOT_HEARTBEAT_GRACE_MS}). Throws the refusal if the
   * renewal fails, `STORAGE_ERROR` if an output could not be written.
   */
  async once(): Promise<void> {
    const health = this.#identityJob.spec.health!;
    await initOutputs(this.#o.outputs ?? []);
    let identity: BotIdentity;
    try {
      identity = await this.#o.identity.renew();
    } catch (cause) {
      health.unhealthy(errorText(cause));
      throw new KeyboundError(
        cause instanceof KeyboundError ? cause.code : "CONNECTION_FAILED",
        this.#describe(cause),
        { cause },
      );
    }
    health.healthy();
    const heartbeat = this.#heartbeats?.oneshot(identity);
    const written = (await Promise.all(
      this.#outputJobs.map((job) => new Job({ ...job.spec, attempts: 1 }, this.#ctx).run()),
    )).every((ok) => ok);
    await heartbeat;
    if (!written) {
      throw new KeyboundError("STORAGE_ERROR", "writing the outputs failed (see the log above)");
    }
  }

  /** Stops: disarms the wake-up, aborts work in flight and waits for it. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#schedule.stop();
  }

  #describe(err: unknown): string {
    return this.#o.describeFailure ? this.#o.describeFailure(err) : errorText(err);
  }
}
