/**
 * A daemon's first contact with the auth service (learning the host CA
 * through a pin, the first join), retried while the service is not there
 * yet — a host that boots before its auth service, an auth service that
 * restarts — with the startup backoff (1 s doubling to 1 min, half jitter)
 * and one log line per failed attempt naming the cause. Any other failure
 * stops it: a refusal needs an admin, and a server that fails the pin or
 * the CA (`TLS_UNTRUSTED`) may be an impostor, which is never retried in
 * silence. A oneshot run does not use this: it fails fast.
 *
 * @module
 */
import type { Logger } from "../../util/log.ts";
import type { Clock } from "../clock.ts";
import { errorText, serverNotThereYet, startupBackoff } from "./policy.ts";

/** Options of {@linkcode untilReachable}. */
export interface FirstContactOptions {
  /** Time source for the waits. */
  clock: Clock;
  /** Random source in [0, 1) for jitter. */
  random: () => number;
  /** Where the line of each failed attempt goes. */
  log: Logger;
  /** Aborts the waiting (the daemon is stopping). */
  signal: AbortSignal;
  /** The cause of a failure in one line (default: message and code). */
  describe?: (err: unknown) => string;
}

/**
 * Runs `attempt` until it succeeds, waiting the startup backoff after each
 * failure for which {@linkcode serverNotThereYet} holds and rethrowing any
 * other. Resolves `undefined` if `signal` aborts first.
 *
 * @example
 * ```ts ignore
 * const transport = await untilReachable(() => platform.createFetch(baseUrl, trust),
 *   { clock, random: Math.random, log, signal });
 * if (transport === undefined) return; // stopped while waiting
 * ```
 */
export async function untilReachable<T>(
  attempt: () => Promise<T>,
  o: FirstContactOptions,
): Promise<T | undefined> {
  for (let failures = 1;; failures++) {
    try {
      return await attempt();
    } catch (err) {
      if (o.signal.aborted) return undefined;
      if (!serverNotThereYet(err)) throw err;
      const delay = Math.ceil(startupBackoff(failures, o.random));
      o.log.warn("the auth service cannot be reached yet; retrying", {
        attempt: failures,
        retry_in_seconds: Math.round(delay / 100) / 10,
        error: (o.describe ?? errorText)(err),
      });
      await o.clock.sleep(delay, o.signal);
      if (o.signal.aborted) return undefined;
    }
  }
}
