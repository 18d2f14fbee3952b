/**
 * The one shape of the line tbot, tctl and the auth service print on stderr
 * when a command stops on an error: `PROGRAM: error [CODE]: message`, where
 * CODE is the stable {@linkcode KeyboundError} code (left out, with its
 * brackets, for an error that has none). One line, escaped (a newline too):
 * messages quote flag values, file contents and server answers, which may
 * hold control characters.
 *
 * @module
 */
import { type ErrorCode, errorMessage, isKeyboundError } from "../errors.ts";
import { escapeLogText } from "../util/log.ts";

/**
 * The error line of `program` for a message and its code.
 *
 * @example
 * ```ts
 * errorLine("tctl", "NOT_FOUND", 'bot "x" not found'); // 'tctl: error [NOT_FOUND]: bot "x" not found'
 * ```
 */
export function errorLine(program: string, code: ErrorCode | undefined, message: string): string {
  return `${program}: error${code === undefined ? "" : ` [${code}]`}: ${escapeLogText(message)}`;
}

/**
 * The error line of `program` for a thrown value: its code when it is a
 * {@linkcode KeyboundError}, and `text` (default: its message) as the message.
 *
 * @example
 * ```ts
 * import { KeyboundError } from "../errors.ts";
 * errorLineOf("auth", new KeyboundError("CONFIG_INVALID", "bad")); // "auth: error [CONFIG_INVALID]: bad"
 * ```
 */
export function errorLineOf(
  program: string,
  err: unknown,
  text: (err: unknown) => string = errorMessage,
): string {
  return errorLine(program, isKeyboundError(err) ? err.code : undefined, text(err));
}
