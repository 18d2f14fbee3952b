/**
 * What a {@linkcode BotRunner} is given and what it reports: its options
 * (where runtimes differ), the options of {@linkcode BotRunner.start}, the
 * identity source it renews through and the status a readiness endpoint
 * shows.
 *
 * @module
 */
import type { Logger } from "../../util/log.ts";
import type { Clock } from "../clock.ts";
import type { HeartbeatBody, HostInfo } from "../heartbeat.ts";
import type { BotIdentity } from "../identity.ts";
import type { IdentityService } from "../identity_service.ts";
import type { TbotMetrics } from "../metrics.ts";
import type { Output } from "../outputs/output.ts";
import type { ReadinessRegistry } from "../readiness.ts";
import type { WakeTimer } from "./timer.ts";

/** Sends one heartbeat with the given identity. */
export type HeartbeatSender = (
  identity: BotIdentity,
  body: HeartbeatBody,
  signal: AbortSignal,
) => Promise<void>;

/** The join entry point the runner renews through (an {@linkcode IdentityService}). */
export type IdentitySource =
  & Pick<IdentityService, "identity" | "hasValidIdentity" | "renew">
  & Partial<Pick<IdentityService, "dropCertificate">>;

/** Everything a {@linkcode BotRunner} needs; runtime differences come in here. */
export interface RunnerOptions {
  /** Holds the identity and joins (refresh or recovery). */
  identity: IdentitySource;
  /** Time between identity renewals, ms (before jitter). */
  renewalInterval: number;
  /** Logger. */
  log: Logger;
  /** Time source (default: the system clock). */
  clock?: Clock;
  /** Random source in [0, 1) for jitter (default `Math.random`). */
  random?: () => number;
  /**
   * Arms the next wake-up; when it fires the runtime calls
   * {@linkcode BotRunner.tick}. Default: a timer on `clock`.
   */
  timer?: WakeTimer;
  /** Service health (default: a new registry). */
  readiness?: ReadinessRegistry;
  /** Metrics, if exported. */
  metrics?: TbotMetrics;
  /** Outputs written after renewals (or on their own interval). */
  outputs?: Output[];
  /** Heartbeats: transport and host facts. None are sent without it. */
  heartbeat?: { send: HeartbeatSender; host: HostInfo };
  /** One line with the advice for a failed join (default: the error and its code). */
  describeFailure?: (err: unknown) => string;
}

/** Options of {@linkcode BotRunner.start}. */
export interface StartOptions {
  /** Renew now even if the stored identity is valid (tbot does at startup). */
  renewNow?: boolean;
  /**
   * If the first renewal fails and there is no identity at all, stop and
   * throw the refusal instead of retrying (a process exits; an object waits).
   */
  requireIdentity?: boolean;
  /**
   * With `requireIdentity`: while the first join fails because the auth
   * service cannot be reached yet, wait and try again with the startup
   * backoff (one warn line per attempt) instead of throwing; any other
   * failure still throws. Resolves without an identity if stopped meanwhile.
   */
  waitForServer?: boolean;
  /** When the renewal is due if none is made now (a Durable Object's stored alarm). */
  due?: Date | null;
}

/** The bot's state in one object, for readiness endpoints. */
export interface RunnerStatus {
  /** `healthy` with a valid identity and no failed renewal since the last success. */
  status: "initializing" | "healthy" | "unhealthy";
  /** Why it is unhealthy: the last refusal with its advice, or expiry. */
  reason?: string;
  /** The current identity, possibly expired. */
  identity: BotIdentity | null;
  /** Time of the last successful renewal by this runner. */
  lastRenewal: Date | null;
  /** Next scheduled wake-up. */
  nextWake: Date | null;
}
