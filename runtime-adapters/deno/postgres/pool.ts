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
import type { Logger } from "../../../src/util/log.ts";
import { NEVER_SENT } from "./errors.ts";

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
  /** Paces this pool's connects while they keep failing (one may serve several pools). */
  connects?: ConnectBackoff;
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
  // Any failure before the server's first byte (a reset: a listener closing with the start-up
  // message unread sends one) came before its ready message: nothing was sent on it. This
  // listener is older than the driver's, so the driver passes on the marked error.
  socket.once("error", (err: unknown) => {
    if (!heard && typeof err === "object" && err !== null) {
      Object.assign(err, { [NEVER_SENT]: true });
    }
  });
  socket.once("end", () => {
    if (heard) return;
    socket.destroy(closedEarly(`${host}:${port} closed the connection before answering`));
  });
  socket.connect(port, host);
  return socket;
}

/**
 * A connection the server closed before it was of use: the code of a reset
 * one (unavailable), marked never sent ({@linkcode NEVER_SENT}). Both makers
 * of it fail the connection before the server's first byte, so before its
 * ready message, and the driver sends a statement only after that: whatever
 * waited for this connection never reached the server.
 */
function closedEarly(message: string): Error {
  return Object.assign(new Error(message), { code: "ECONNRESET", [NEVER_SENT]: true });
}

/** Every this many silent closes in a row, the next connect fails its query instead. */
const CUT_EVERY = 3;

/**
 * Paces the connects to one server while they end without a word before any
 * query succeeded: a server that closes right after the TLS handshake, or
 * after answering the TLS request with "no" (sslmode=prefer), or after any
 * byte of its start-up answer. The driver takes such a close, without an
 * error, as a reason to connect again at once for the pending query: a
 * loop of hundreds of connects a second, the query waiting for ever (the
 * connect timeout restarts with each). Here each silent close counts; while
 * the count is not zero each connect first waits a backoff (50 ms doubling
 * to 1 s, jittered to 50–100 %), and every {@linkcode CUT_EVERY}th close
 * makes the next connect fail its query (ECONNRESET: BACKEND_UNAVAILABLE)
 * instead of trying again. A successful query ({@linkcode succeeded}) ends
 * the burst. A close after an error is the driver's own backoff's.
 */
export class ConnectBackoff {
  #failures = 0;
  #cut = false;
  #queries = 0;
  #driverCloses = 0;
  #where: string;
  #log: Logger;

  /** `where` names the server in the one log line of each burst. */
  constructor(where: string, log: Logger) {
    this.#where = where;
    this.#log = log;
  }

  /** A query succeeded: connects work again. */
  succeeded(): void {
    this.#queries++;
    this.#failures = 0;
    this.#cut = false;
  }

  /**
   * The driver took a connection's close as a close (its `onclose`): it
   * does for every close but one it answers by connecting again at once.
   */
  driverClosed(): void {
    this.#driverCloses++;
  }

  #closedSilently(): void {
    if (++this.#failures === 1) {
      this.#log.warn(
        "postgres: a connection closed before its first query; waiting before each connect " +
          "until a query succeeds",
        { server: this.#where },
      );
    }
    if (this.#failures % CUT_EVERY === 0) this.#cut = true;
  }

  /** The driver's socket for its next connect, once the backoff allows it. */
  async socket(host: string, port: number): Promise<Socket> {
    if (this.#failures > 0) {
      const ms = Math.min(50 * 2 ** (this.#failures - 1), 1000) * (0.5 + Math.random() / 2);
      await new Promise((r) => setTimeout(r, ms));
    }
    if (this.#cut) {
      this.#cut = false;
      // Never connected: the driver's first write (it listens for errors by then) fails it,
      // and with it the query waiting for this connection.
      const said = `${host}:${port} closed ${this.#failures} connections in a row before a query`;
      const socket = Object.assign(new Socket(), { host, port });
      socket.write = () => (socket.destroy(closedEarly(said)), false);
      return socket;
    }
    const socket = connectingSocket(host, port);
    const queries = this.#queries;
    const watch = () =>
      socket.once("close", (hadError: boolean) => {
        if (hadError || this.#queries !== queries) return;
        // Heard before the driver's own close handling (this listener is older than its, and
        // over TLS this socket closes before the TLS one): a close it then takes as a close
        // (PostgreSQL refusing the login, say) is no silent close.
        const closes = this.#driverCloses;
        setTimeout(() => {
          if (this.#driverCloses === closes && this.#queries === queries) this.#closedSilently();
        }, 0);
      });
    watch();
    // The driver drops every listener of this socket when it starts TLS (secure() in its
    // connection.js): keep watching for the close, which this socket still reports.
    const removeAll = socket.removeAllListeners;
    socket.removeAllListeners = function (this: Socket, ...args) {
      const r = removeAll.apply(this, args);
      watch();
      return r;
    };
    return socket;
  }
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
    ...({
      socket: () => o.connects?.socket(o.host, o.port) ?? connectingSocket(o.host, o.port),
    } as object),
    connection: o.session,
    onclose: () => o.connects?.driverClosed(),
    onnotice: () => {},
  });
}
