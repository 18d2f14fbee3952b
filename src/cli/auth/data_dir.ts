/**
 * The files of the auth service's data directory, which `tctl --data-dir`
 * reads on the auth host.
 *
 * @module
 */

/** The Deno KV database file. */
export const KV_FILE = "keybound.kv";
/** The admin identity file. */
export const ADMIN_IDENTITY_FILE = "admin-identity";
/**
 * One line with the URL the service listens on, so `tctl --data-dir DIR` on
 * the auth host finds the server without being told the address.
 */
export const AUTH_SERVER_FILE = "auth-server";

/**
 * The private directory of the HTTP server behind the TLS front: its Unix
 * socket, `PID-RANDOM.sock`, and its lock file, `PID-RANDOM.lock`, while
 * the service runs (one pair per auth process using the data directory).
 */
export const FRONT_SOCKET_DIR = "front";

/** `DIR/FILE`, whatever slashes `dir` ends with. */
export function dataDirFile(dir: string, file: string): string {
  return `${dir.replace(/\/+$/, "")}/${file}`;
}
