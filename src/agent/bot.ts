/**
 * tbot's run: the shared {@linkcode BotRunner} driven by the daemon's timers
 * and signals. Oneshot joins once, writes the outputs and returns; daemon
 * renews every `renewal_interval` until stopped.
 *
 * @module
 */
import type { Logger } from "../util/log.ts";
import type { Clock } from "./clock.ts";
import type { TbotConfig } from "./config/schema.ts";
import type { HostInfo } from "./heartbeat.ts";
import type { IdentityService } from "./identity_service.ts";
import type { TbotMetrics } from "./metrics.ts";
import type { Output } from "./outputs/output.ts";
import type { ReadinessRegistry } from "./readiness.ts";
import { describeJoinFailure } from "./refusal.ts";
import { BotRunner, type HeartbeatSender, type Wakeup } from "./runner/mod.ts";

export {
  IDENTITY_ATTEMPTS,
  ONESHOT_HEARTBEAT_GRACE_MS,
  OUTPUT_ATTEMPTS,
  STARTUP_MAX_BACKOFF_MS,
} from "./runner/mod.ts";
export type { HeartbeatSender } from "./runner/mod.ts";

/** Everything {@linkcode runBot} needs. */
export interface BotOptions {
  /** Configuration (after command-line overrides). */
  config: TbotConfig;
  /** The identity service, with any stored identity loaded. */
  identity: IdentityService;
  /** Outputs to write after every renewal. */
  outputs: Output[];
  /** Heartbeat transport. */
  heartbeat: HeartbeatSender;
  /** Host facts for heartbeats. */
  host: HostInfo;
  /** Time source. */
  clock: Clock;
  /** Random source for jitter. */
  random: () => number;
  /** Logger. */
  log: Logger;
  /** Service health for `/readyz`. */
  readiness: ReadinessRegistry;
  /** Metrics for `/metrics`. */
  metrics: TbotMetrics;
  /** Aborts to stop the daemon (SIGINT/SIGTERM). */
  signal: AbortSignal;
  /** Fires to renew at once (SIGHUP). */
  wakeup: Wakeup;
  /** Auth service address, for messages. */
  server: string;
  /** Join token name, for messages. */
  tokenName: string;
  /** True when joining with a static key, for messages. */
  staticKey: boolean;
}

/**
 * Runs the bot. Oneshot: resolves after one join and the outputs are written,
 * throws a `KeyboundError` with the reason otherwise. Daemon: resolves when
 * `signal` aborts; throws only if the very first join (with no stored
 * identity to fall back on) fails for a reason other than an auth service
 * that cannot be reached yet (that one is retried).
 *
 * @example
 * ```ts ignore
 * await runBot({ config, identity, outputs, heartbeat, host, clock: systemClock,
 *   random: Math.random, log, readiness, metrics, signal, wakeup: new Wakeup(),
 *   server, tokenName, staticKey: false });
 * ```
 */
export async function runBot(o: BotOptions): Promise<void> {
  const runner = new BotRunner({
    identity: o.identity,
    renewalInterval: o.config.renewal_interval,
    clock: o.clock,
    random: o.random,
    log: o.log,
    readiness: o.readiness,
    metrics: o.metrics,
    outputs: o.outputs,
    heartbeat: { send: o.heartbeat, host: o.host },
    describeFailure: (err) =>
      describeJoinFailure(err, {
        tokenName: o.tokenName,
        server: o.server,
        staticKey: o.staticKey,
      }),
  });
  if (o.config.oneshot) return await runner.once();

  // Without an identity there is nothing to run with: the first join waits for an auth service
  // that is not up yet, and stops on anything else (a refusal, an untrusted server).
  const stopWaiting = () => void runner.stop();
  o.signal.addEventListener("abort", stopWaiting, { once: true });
  try {
    await runner.start({ renewNow: true, requireIdentity: true, waitForServer: true });
  } finally {
    o.signal.removeEventListener("abort", stopWaiting);
  }
  while (!o.signal.aborted) {
    await o.wakeup.wait(o.signal);
    if (!o.signal.aborted) await runner.wake();
  }
  await runner.stop();
}
