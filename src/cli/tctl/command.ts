/**
 * The shape of a tctl command and helpers shared by the command modules.
 *
 * @module
 */
import { isKeyboundError, KeyboundError, ServerError } from "../../errors.ts";
import type { TctlContext } from "./context.ts";
import { type FlagName, stringFlag, type TctlFlags } from "./options.ts";

/** A mistake on the command line (exit code 2). */
export class UsageError extends KeyboundError {
  /**
   * A usage error.
   * @param message what is wrong, naming the flag or argument
   */
  constructor(message: string) {
    super("BAD_PARAMETER", message);
    this.name = "UsageError";
  }
}

/** One tctl command. */
export interface CommandSpec {
  /** Words that select it, canonical spelling (`["bots", "instances", "show"]`). */
  path: string[];
  /** Arguments for the usage line, e.g. `BOT/UUID`. */
  args: string;
  /** Minimum and maximum number of positional arguments. */
  arity: [number, number];
  /** One-line description. */
  summary: string;
  /** Command-specific flags (global flags are always accepted). */
  flags: FlagName[];
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
  const value = stringFlag(flags, "format") ?? fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--format: unsupported format "${value}" (use ${allowed.join(", ")})`);
  }
  return value as OutputFormat;
}

/**
 * How tctl shows an error: a server's refusal as `[CODE] message`, an
 * untrusted server certificate with what to do about it.
 */
export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err instanceof ServerError) return `[${err.code}] ${err.message}`;
  if (isKeyboundError(err, "TLS_UNTRUSTED")) {
    return `${err.message} (the server's certificate does not verify against the host CA in ` +
      "the identity file; --insecure skips verification)";
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
