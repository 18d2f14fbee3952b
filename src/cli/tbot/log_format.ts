/**
 * `--log-format`, shared by every tbot command. Kept apart from `start.ts`
 * so the other commands do not load the agent to read one flag.
 *
 * @module
 */
import { UsageError } from "../flags/usage_error.ts";
import type { LogFormat } from "../../util/log.ts";

/** Parses `--log-format`; throws on anything but text or json. */
export function logFormatOf(v: string | undefined): LogFormat {
  if (v === undefined || v === "text" || v === "json") return v ?? "text";
  throw new UsageError(`--log-format: must be "text" or "json", not "${v}"`);
}
