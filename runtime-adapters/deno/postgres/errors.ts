/**
 * PostgreSQL and driver failures as Keybound errors: an unreachable or
 * restarting database is `BACKEND_UNAVAILABLE` (503, retry later); a
 * refused login or a missing database says what to fix; anything else is a
 * `STORAGE_ERROR`. Messages name the server, never the password.
 *
 * @module
 */
import { ConfigError, KeyboundError } from "../../../src/errors.ts";

/** SQLSTATEs of a lost race between serializable transactions: retry the transaction. */
export const RETRY_SQLSTATES = new Set(["40001", "40P01", "23505"]);

/**
 * SQLSTATEs of a server that is going away, not accepting connections yet,
 * or ending this session: `57P05` (idle_session_timeout) and `25P03`
 * (idle_in_transaction_session_timeout) are FATAL, the server closes the
 * connection after them, and the driver passes them to a statement sent in
 * that instant. A fresh connection serves the next request, as after any
 * other lost connection; nothing is wrong with the storage.
 */
const UNAVAILABLE_SQLSTATES = new Set([
  "57P01",
  "57P02",
  "57P03",
  "57P05",
  "25P03",
  "53300",
  "25006",
]);

/** Driver and socket codes of a connection that could not be made or was lost. */
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECTION_ENDED",
]);

/**
 * Codes of a connection that was never made (refused, not found, timed out
 * connecting, or PostgreSQL refusing new sessions): a statement waiting for
 * it was never sent.
 */
const NEVER_CONNECTED_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "CONNECT_TIMEOUT",
  "57P03",
  "53300",
]);

/**
 * The mark of an error made for a connection that failed before the
 * server's ready message (pool.ts): its code is a reset's (ECONNRESET,
 * unavailable), yet no statement went out on it.
 */
export const NEVER_SENT = Symbol("keybound.postgres.neverSent");

/**
 * Whether the statement that failed with `err` was certainly never sent:
 * its connection was never made, or failed before the server was ready.
 * Otherwise (a connection lost or reset under it, the server ending the
 * session) PostgreSQL may have run it.
 */
export function neverSent(err: unknown): boolean {
  if ((err as { [NEVER_SENT]?: unknown } | null)?.[NEVER_SENT] === true) return true;
  const code = errorCode(err);
  return code === undefined
    ? err instanceof Deno.errors.ConnectionRefused
    : NEVER_CONNECTED_CODES.has(code);
}

/**
 * Unavailable SQLSTATEs PostgreSQL reports as an ERROR on a session that
 * lives on: `25006`, a write refused on a standby or a read-only session.
 */
const SESSION_KEPT_SQLSTATES = new Set(["25006"]);

/**
 * Whether the session that answered `err` lives on: the statement was
 * answered (it failed), and the driver may already have sent the next one
 * on that session.
 */
export function sessionKept(err: unknown): boolean {
  const code = errorCode(err);
  return code !== undefined && SESSION_KEPT_SQLSTATES.has(code);
}

/** The `code` of a driver or socket error (a SQLSTATE for server errors). */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Whether `err` is a connection that could not be made or was lost, or a server going away. */
export function isUnavailable(err: unknown): boolean {
  const code = errorCode(err);
  if (code === undefined) {
    // Deno's socket errors carry the reason in the class name only.
    return err instanceof Deno.errors.ConnectionRefused ||
      err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BrokenPipe ||
      err instanceof Deno.errors.TimedOut || err instanceof Deno.errors.ConnectionAborted;
  }
  return UNAVAILABLE_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith("08");
}

function reason(err: unknown): string {
  const code = errorCode(err);
  const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
  return code && !msg.includes(code) ? `${msg} (${code})` : msg;
}

/**
 * The Keybound error for a failure while serving requests. `where` names the
 * server (`host:port/db`).
 */
export function toBackendError(err: unknown, where: string): KeyboundError {
  if (err instanceof KeyboundError) return err;
  if (isUnavailable(err)) {
    return new KeyboundError("BACKEND_UNAVAILABLE", "the storage backend is unavailable", {
      cause: new Error(`postgres ${where}: ${reason(err)}`),
    });
  }
  return new KeyboundError("STORAGE_ERROR", "storage backend error", {
    cause: new Error(`postgres ${where}: ${reason(err)}`),
  });
}

/**
 * The one-line error for a failure to connect at start-up, saying what the
 * operator has to fix.
 */
export function toStartupError(err: unknown, where: string, user: string): KeyboundError {
  if (err instanceof KeyboundError) return err;
  const code = errorCode(err);
  if (code === "28P01" || code === "28000") {
    return new ConfigError(
      `storage: PostgreSQL at ${where} refused user "${user}": ${reason(err)} ` +
        "(check PGPASSWORD or --storage-password-file and pg_hba.conf)",
    );
  }
  if (code === "3D000") return new ConfigError(`storage: ${reason(err)} on PostgreSQL at ${where}`);
  if (isUnavailable(err)) {
    return new KeyboundError(
      "BACKEND_UNAVAILABLE",
      `storage: cannot reach PostgreSQL at ${where}: ${reason(err)}`,
    );
  }
  return new KeyboundError("STORAGE_ERROR", `storage: PostgreSQL at ${where}: ${reason(err)}`);
}

/**
 * The error for a commit session that is not SERIALIZABLE: its one-statement
 * compare-and-swap would not be atomic, so nothing was written. The level is
 * a startup parameter (`default_transaction_isolation`), which a connection
 * pooler configured to ignore startup parameters drops without a word.
 */
export function notSerializable(where: string): ConfigError {
  return new ConfigError(
    `storage: PostgreSQL at ${where} runs this session below SERIALIZABLE, so a commit could ` +
      "apply twice; nothing was written (a connection pooler dropping default_transaction_isolation? " +
      "connect directly or forward the parameter)",
  );
}
