/**
 * The agent's run: join (or renew), write outputs, send heartbeats, and in
 * daemon mode keep renewing every `renewal_interval` until stopped. All
 * effects come in through options, so the same code runs under a fake clock
 * in tests.
 *
 * @module
 */
import { KeyboundError } from "../errors.ts";
import type { Logger } from "../util/log.ts";
import type { Clock } from "./clock.ts";
import type { TbotConfig } from "./config/schema.ts";
import { HEARTBEAT_INTERVAL_MS, type HeartbeatBody, type HostInfo } from "./heartbeat.ts";
import type { BotIdentity } from "./identity.ts";
import type { IdentityService } from "./identity_service.ts";
import {
  errorText,
  jitteredInterval,
  retryUntilSuccess,
  runIteration,
  runOnInterval,
  type TaskOptions,
  waitFor,
  type Wakeup,
} from "./loop.ts";
import type { TbotMetrics } from "./metrics.ts";
import type { Output } from "./outputs/output.ts";
import type { ReadinessRegistry } from "./readiness.ts";
import { describeJoinFailure } from "./refusal.ts";

/** Attempts per identity renewal (Teleport: 7, backoff 1 s doubling). */
export const IDENTITY_ATTEMPTS = 7;
/** Attempts per output write and per heartbeat (Teleport: 5). */
export const OUTPUT_ATTEMPTS = 5;
/** Longest wait between retries after a failed renewal at startup. */
export const STARTUP_MAX_BACKOFF_MS = 60_000;
/** How long oneshot mode waits for its heartbeat before exiting. */
export const ONESHOT_HEARTBEAT_GRACE_MS = 5_000;

/** Sends one heartbeat with the given identity. */
export type HeartbeatSender = (
  identity: BotIdentity,
  body: HeartbeatBody,
  signal: AbortSignal,
) => Promise<void>;

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
 * throws a {@linkcode KeyboundError} with the reason otherwise. Daemon:
 * resolves when `signal` aborts; throws only if the very first join (with no
 * stored identity to fall back on) fails.
 */
export async function runBot(o: BotOptions): Promise<void> {
  const startedAt = o.clock.now().getTime();
  const refusal = (err: unknown) =>
    describeJoinFailure(err, { tokenName: o.tokenName, server: o.server, staticKey: o.staticKey });
  const identityHealth = o.readiness.register("identity");
  const outputHealth = new Map(o.outputs.map((out) => [out, o.readiness.register(out.name)]));
  const heartbeatHealth = o.readiness.register("heartbeat");

  for (const out of o.outputs) {
    try {
      await out.init();
    } catch (cause) {
      throw new KeyboundError(
        "STORAGE_ERROR",
        `output "${out.name}" (${out.describe()}) cannot be prepared: ${errorText(cause)}`,
        { cause },
      );
    }
  }

  const base = {
    clock: o.clock,
    random: o.random,
    log: o.log,
    signal: o.signal,
    metrics: o.metrics,
  };
  const renewTask: TaskOptions = {
    ...base,
    service: "identity",
    name: "bot-identity-renewal",
    attempts: IDENTITY_ATTEMPTS,
    health: identityHealth,
    task: async () => void await o.identity.renew(),
    onFailure: (err) => o.log.error(refusal(err), { service: "identity" }),
  };
  const writeOutputs = async (outputs: Output[] = o.outputs) => {
    const identity = o.identity.identity;
    if (!identity) return true;
    let ok = true;
    for (const out of outputs) {
      ok = await runIteration({
        ...base,
        service: out.name,
        name: "output-write",
        attempts: o.config.oneshot ? 1 : OUTPUT_ATTEMPTS,
        health: outputHealth.get(out),
        task: () => out.write(identity),
      }) && ok;
    }
    return ok;
  };
  const heartbeatBody = (isStartup: boolean): HeartbeatBody => ({
    is_startup: isStartup,
    version: o.host.version,
    hostname: o.host.hostname,
    uptime_seconds: Math.floor((o.clock.now().getTime() - startedAt) / 1000),
    one_shot: o.config.oneshot,
    architecture: o.host.architecture,
    os: o.host.os,
  });

  // The error the process ends with: the one-line refusal, keeping the server's code.
  const fatal = (cause: unknown) =>
    new KeyboundError(
      cause instanceof KeyboundError ? cause.code : "CONNECTION_FAILED",
      refusal(cause),
      { cause },
    );

  if (o.config.oneshot) {
    try {
      await o.identity.renew();
    } catch (cause) {
      identityHealth.unhealthy(errorText(cause));
      throw fatal(cause);
    }
    identityHealth.healthy();
    // The heartbeat travels while the outputs are written (Teleport runs its
    // heartbeat service beside the outputs); the exit waits for both.
    const heartbeat = oneshotHeartbeat(o, heartbeatBody(true), heartbeatHealth);
    const written = await writeOutputs();
    await heartbeat;
    if (!written) {
      throw new KeyboundError("STORAGE_ERROR", "writing the outputs failed (see the log above)");
    }
    return;
  }

  let firstError: unknown;
  if (!await runIteration({ ...renewTask, attempts: 1, onFailure: (e) => firstError = e })) {
    if (o.signal.aborted) return;
    // Without an identity to fall back on there is nothing to run with (Teleport exits too).
    if (!o.identity.identity) throw fatal(firstError);
    o.log.error(refusal(firstError), { service: "identity" });
    o.log.warn("keeping the stored identity and retrying in the background");
    if (
      !await retryUntilSuccess({ ...renewTask, maxDelay: STARTUP_MAX_BACKOFF_MS, wakeup: o.wakeup })
    ) {
      return;
    }
  }
  await writeOutputs();

  // Outputs with their own renewal_interval renew on it, not with the bot identity.
  const followers = o.outputs.filter((out) => out.renewalInterval === undefined);
  const ownLoops = () =>
    o.outputs.filter((out) => out.renewalInterval !== undefined).map((out) =>
      runOnInterval({
        ...base,
        service: out.name,
        name: "output-write",
        attempts: OUTPUT_ATTEMPTS,
        health: outputHealth.get(out),
        interval: out.renewalInterval!,
        task: () => {
          const identity = o.identity.identity;
          if (!identity) {
            throw new KeyboundError("CONNECTION_FAILED", "no identity to renew the output with");
          }
          return out.write(identity);
        },
      })
    );
  const identityLoop = async () => {
    while (!o.signal.aborted) {
      await waitFor(
        o.clock,
        jitteredInterval(o.config.renewal_interval, o.random),
        o.signal,
        o.wakeup,
      );
      if (o.signal.aborted) return;
      if (await runIteration(renewTask)) await writeOutputs(followers);
    }
  };
  let startupSent = false;
  const heartbeatTask: TaskOptions = {
    ...base,
    service: "heartbeat",
    name: "heartbeat",
    attempts: OUTPUT_ATTEMPTS,
    health: heartbeatHealth,
    task: async () => {
      const identity = o.identity.identity;
      if (!identity) {
        throw new KeyboundError("CONNECTION_FAILED", "no identity to send a heartbeat with");
      }
      await o.heartbeat(identity, heartbeatBody(!startupSent), o.signal);
      startupSent = true;
    },
    onFailure: (err) => o.log.warn("heartbeat failed", { error: errorText(err) }),
  };
  const heartbeatLoop = async () => {
    await runIteration(heartbeatTask);
    await runOnInterval({ ...heartbeatTask, interval: HEARTBEAT_INTERVAL_MS });
  };
  await Promise.all([identityLoop(), heartbeatLoop(), ...ownLoops()]);
}

async function oneshotHeartbeat(
  o: BotOptions,
  body: HeartbeatBody,
  health: { healthy(): void; unhealthy(r: string): void },
): Promise<void> {
  const identity = o.identity.identity;
  if (!identity) return;
  const give = new AbortController();
  const timer = o.clock.sleep(ONESHOT_HEARTBEAT_GRACE_MS, give.signal).then(() => give.abort());
  try {
    await o.heartbeat(identity, body, give.signal);
    health.healthy();
  } catch (err) {
    health.unhealthy(errorText(err));
    o.log.warn("heartbeat failed", { error: errorText(err) });
  } finally {
    give.abort();
    await timer;
  }
}
