/**
 * How every tbot command ends on an error: a command-line mistake is one
 * `tbot: ` line and exit 2 (as the parser reports an unknown flag); anything
 * else is one error log line (text or JSON, as configured) and exit 1.
 *
 * @module
 */
import { KeyboundError } from "../../errors.ts";
import { errorText } from "../../agent/runner/policy.ts";
import { escapeLogText, type Logger } from "../../util/log.ts";
import { UsageError } from "../flags/mod.ts";
import type { TbotPlatform } from "./platform.ts";

/** The prefix of tbot's usage errors. */
export const USAGE_PREFIX = "tbot: ";

/**
 * The one stderr line of a usage error. Escaped: the message quotes flag
 * values, which come from argv or the environment and may hold control
 * characters.
 */
export function usageLine(message: string): string {
  return USAGE_PREFIX + escapeLogText(message);
}

/**
 * Reports `e` and returns the exit code.
 *
 * @example
 * ```ts ignore
 * } catch (e) {
 *   return reportFailure(e, platform, log);
 * }
 * ```
 */
export function reportFailure(e: unknown, platform: TbotPlatform, log: Logger): number {
  if (e instanceof UsageError) {
    platform.stderr(usageLine(e.message));
    return 2;
  }
  // KeyboundError messages are complete sentences already (join refusals carry code and advice).
  log.error(e instanceof KeyboundError ? e.message : errorText(e));
  return 1;
}
