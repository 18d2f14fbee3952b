/**
 * One log line per burst of like events at the public front.
 *
 * @module
 */
import type { FrontEvent } from "../../../src/server/metrics.ts";
import type { Logger } from "../../../src/util/log.ts";

/** A burst of refusals or failed accepts is over after this long without one. */
const BURST_QUIET_MS = 5_000;

/**
 * A log line for the first of a burst of like events and one when the burst
 * is over, with how many there were: an operator sees the shortage, the log
 * does not fill with one line per attempt. Both lines carry `reason`, the
 * event's stable name (as the front reports it for the metrics), for alert
 * rules and log queries: the messages are prose and may change.
 */
export function burstLog(
  log: Logger,
  // server_unreachable: logged only, no counter of its own.
  reason: FrontEvent | "server_unreachable",
  first: string,
  over: string,
  clock: () => number = () => performance.now(),
) {
  let count = 0;
  let since = 0;
  let last = 0;
  return {
    note(detail: string) {
      last = clock();
      if (count++ === 0) {
        since = last;
        log.warn(first, { reason, detail });
      }
    },
    /** Something went right: ends the burst if none happened for BURST_QUIET_MS. */
    over() {
      const now = clock();
      if (count === 0 || now - last < BURST_QUIET_MS) return;
      log.info(`${first}: over, ${over}`, { reason, count, ms: now - since });
      count = 0;
    },
  };
}
