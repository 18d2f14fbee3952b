/**
 * How every tbot command ends on an error: a command-line mistake is one
 * `tbot: error [BAD_PARAMETER]: …` line (../error_line.ts) and exit 2 (as the
 * parser reports an unknown flag); anything else is one error log line (text
 * or JSON, as configured, with the error's stable code as the `code` field)
 * and exit 1.
 *
 * @module
 */
import { KeyboundError } from "../../errors.ts";
import { errorText } from "../../agent/runner/policy.ts";
import type { Logger } from "../../util/log.ts";
import { errorLine } from "../error_line.ts";
import { UsageError } from "../flags/mod.ts";
import type { TbotPlatform } from "./platform.ts";

/** The one stderr line of a usage error (escaped, see ../error_line.ts). */
export function usageLine(message: string): string {
  return errorLine("tbot", "BAD_PARAMETER", message);
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
  // KeyboundError messages are complete sentences already (join refusals carry advice); the
  // stable code goes in a field, as on the other programs' error lines (../error_line.ts).
  if (e instanceof KeyboundError) log.error(e.message, { code: e.code });
  else log.error(errorText(e));
  return 1;
}
