/**
 * The one way to build a postgres.js (3.4.9) client: the backend's two pools
 * and every client a test or bench opens come from {@linkcode openPool}, so
 * each carries the options that keep a lost connection from ending the
 * process (a test process crashing takes every file of a parallel
 * `deno test` run with it, as an auth process would).
 *
 * @module
 */
import postgres, { type Sql } from "postgres";
import { Socket } from "node:net";

/** Options of {@linkcode openPool}. */
export interface PoolOptions {
  host: string;
  port: number;
  database: string;
  user: string;
  /** The role's password, if the server asks for one. */
  password?: string;
  /** The driver's TLS option (false: plain TCP). */
  ssl?: postgres.Options<never>["ssl"];
  /** Most connections (default 10). */
  max?: number;
  /** Seconds to wait for a connection (default 5). */
  connectTimeoutSeconds?: number;
  /** Start-up parameters; `application_name` names the client in pg_stat_activity. */
  session: { application_name: string } & Record<string, string>;
}

/**
 * The driver's TCP connection to `host:port`, connecting, whose peer closing
 * it before sending a byte is an error. postgres 3.4.9 treats a close
 * without an error before the server's start-up answer (a listener that
 * accepts and closes at once: HAProxy in TCP mode while its server is down)
 * by reconnecting at once for the pending query, without backoff and
 * without end: the request waited for the server while its connection
 * reconnected hundreds of times a second. As an error, the close fails the
 * pending query (BACKEND_UNAVAILABLE) and the next attempt waits out the
 * backoff. PostgreSQL itself always answers first (its start-up messages, or
 * an error when it is shutting down), so its own closes are left alone.
 */
function connectingSocket(host: string, port: number): Socket {
  const socket = new Socket();
  // The driver's connection errors name the address from these.
  Object.assign(socket, { host, port });
  let heard = false;
  socket.once("data", () => (heard = true));
  socket.once("end", () => {
    if (heard) return;
    socket.destroy(
      Object.assign(new Error(`${host}:${port} closed the connection before answering`), {
        code: "ECONNRESET",
      }),
    );
  });
  socket.connect(port, host);
  return socket;
}

/** A postgres.js client (a pool of up to `max` connections) with Keybound's options. */
export function openPool(o: PoolOptions): Sql {
  return postgres({
    host: o.host,
    port: o.port,
    database: o.database,
    username: o.user,
    ...(o.password !== undefined ? { password: o.password } : {}),
    ssl: o.ssl ?? false,
    max: o.max ?? 10,
    connect_timeout: o.connectTimeoutSeconds ?? 5,
    // Seconds before a connection that failed is tried again. The driver's default grows
    // to 20 s across the pool during an outage, so requests waited up to 20 s after the
    // database was back; capped at 1 s (at most 20 connections per instance retry).
    backoff: (failures: number) => Math.min(0.05 * 2 ** failures, 1) * (0.5 + Math.random() / 2),
    idle_timeout: 60,
    // Never fetch the server's array types. The driver (postgres 3.4.9) runs that fetch
    // on every new connection from an async function nothing awaits (fetchArrayTypes in
    // its connection.js): when the connection dies while the fetch is in flight
    // (PostgreSQL stopped or restarted, a failover, pg_terminate_backend), its promise
    // rejects with the socket's error (ECONNRESET, ECONNREFUSED) unhandled, and an
    // unhandled rejection ends the process. Nothing here needs the types: lists travel
    // as JSON text and no result column is an array.
    fetch_types: false,
    // Read by the driver (connection.js createSocket) but missing from its types.
    ...({ socket: () => connectingSocket(o.host, o.port) } as object),
    connection: o.session,
    onnotice: () => {},
  });
}
