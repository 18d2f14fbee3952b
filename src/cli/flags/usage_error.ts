/**
 * The error of a command-line mistake.
 *
 * @module
 */
import { errorMessage, isKeyboundError, KeyboundError } from "../../errors.ts";

/** A mistake on the command line: one line naming the flag or argument, exit code 2. */
export class UsageError extends KeyboundError {
  /**
   * A usage error.
   * @param message what is wrong, naming the flag or argument
   */
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("BAD_PARAMETER", message, options);
    this.name = "UsageError";
  }
}

/**
 * Runs `parse` on a flag's value; an error becomes one {@linkcode UsageError}
 * prefixed with the flag, once: an error whose `details.path` is the flag
 * (parsers given the flag's name put it there, and in their message) is kept
 * as it is.
 *
 * @example
 * ```ts
 * import { flagValue } from "./usage_error.ts";
 * const port = flagValue("--port", () => Number("80"));
 * ```
 */
export function flagValue<T>(flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    const message = errorMessage(e);
    const named = isKeyboundError(e) && e.details?.path === flag;
    throw new UsageError(named ? message : `${flag}: ${message}`, { cause: e });
  }
}
