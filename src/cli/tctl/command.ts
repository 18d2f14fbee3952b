/**
 * The shape of a tctl command and helpers shared by the command modules.
 *
 * @module
 */
import { isKeyboundError, KeyboundError } from "../../errors.ts";
import { type CommandSpec as FrameworkCommand, UsageError } from "../flags/mod.ts";
import type { UnexpectedAnswerDetails } from "../../protocol/http_client.ts";
import type { TctlContext } from "./context.ts";
import type { FlagName, TctlFlags } from "./options.ts";

export { UsageError };

/** One tctl command: its line in the table, and how it runs. */
export interface CommandSpec extends FrameworkCommand<FlagName> {
  /** Runs it. */
  run(ctx: TctlContext, args: string[], flags: TctlFlags): Promise<void>;
}

/** Output formats a command supports. */
export type OutputFormat = "text" | "json" | "yaml";

/** `--format`, checked against what the command supports. */
export function outputFormat(
  flags: TctlFlags,
  allowed: readonly OutputFormat[],
  fallback: OutputFormat,
): OutputFormat {
  const value = flags.format ?? fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--format: unsupported format "${value}" (use ${allowed.join(", ")})`);
  }
  return value as OutputFormat;
}

/**
 * How tctl words an error (its code goes on the error line, ../error_line.ts):
 * an untrusted server certificate, or an answer tctl cannot use (told apart
 * by `details`, src/protocol/http_client.ts), with what to do about it.
 */
export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (isKeyboundError(err, "TLS_UNTRUSTED")) {
    return `${err.message} (the server's certificate does not verify against the host CA in ` +
      "the identity file or --ca-path; a service with its own PKI certificate needs --ca-path " +
      "naming that PKI's CA)";
  }
  if (isKeyboundError(err, "CONNECTION_FAILED")) {
    const answer: UnexpectedAnswerDetails = err.details ?? {};
    if (typeof answer.answer_schema_mismatch === "string") {
      return `${err.message} (the auth service answered, but its field ` +
        `${answer.answer_schema_mismatch} is not what this tctl reads: tctl and the auth ` +
        "service are of different versions; use a tctl of the service's version)";
    }
    if (answer.answer_not_json === true) {
      return `${err.message} (something answered, but not with JSON: check that the address ` +
        "names the auth service, not a proxy or another service)";
    }
  }
  return err.message;
}

/** Re-throws `err` with a context prefix, keeping its code. */
export function withContext(prefix: string, err: unknown, hint = ""): never {
  if (err instanceof KeyboundError) {
    throw new KeyboundError(err.code, `${prefix}: ${errorText(err)}${hint}`, { cause: err });
  }
  throw err;
}
