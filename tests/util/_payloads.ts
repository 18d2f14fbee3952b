/**
 * Hostile log payloads shared by the logger and auth-process tests.
 *
 * @module
 */

/** Issue #8's payload, verbatim: erase the line, print a green "OK…", retitle the terminal. */
export const ANSI_PAYLOAD = "\x1b[2K\x1b[32mOK…\x1b]0;pwned\x07";
/** A value that tries to start a forged log line. */
export const NEWLINE_PAYLOAD =
  "x\n2026-12-01T00:00:00.000Z INFO  bot.join success bot_name=prod component=auth";

/** Anything a terminal or a line-based reader would act on. */
// deno-lint-ignore no-control-regex -- matching control characters is the point
export const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
