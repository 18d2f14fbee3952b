/**
 * Serving a hono application with Deno: HTTPS or plain HTTP, the peer
 * address passed as the hono env, and graceful stop on SIGINT/SIGTERM.
 *
 * @module
 */
import { formatHostPort } from "../../src/util/host_port.ts";

/** What {@linkcode serveApp} serves: anything with hono's `fetch(request, env)`. */
export interface FetchApp {
  /** Handles one request. */
  fetch(request: Request, env: { remoteAddr?: string }): Response | Promise<Response>;
}

/** Options of {@linkcode serveApp}. */
export interface ServeAppOptions {
  /** Interface to listen on. */
  hostname: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** Certificate chain and key, PEM; omit for plain HTTP. */
  tls?: { cert: string; key: string };
  /** The client's address for a peer, when a front (PROXY protocol) knows it better. */
  clientAddress?: (peer: Deno.NetAddr) => string | undefined;
}

/** A listening server. */
export interface RunningServer {
  /** The address actually bound (the real port when 0 was asked for). */
  addr: Deno.NetAddr;
  /** `https://HOST:PORT` or `http://HOST:PORT`. */
  url: string;
  /** Stops accepting, lets in-flight requests finish, then resolves. */
  shutdown(): Promise<void>;
  /** Resolves when the server has stopped. */
  finished: Promise<void>;
}

/** Starts serving `app`; returns once the socket is bound (throws if it cannot be). */
export function serveApp(app: FetchApp, options: ServeAppOptions): RunningServer {
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    ...(options.tls ?? {}),
    // Silences Deno's default "Listening on" line; callers print their own.
    onListen: () => {},
  }, (request, info) =>
    app.fetch(request, {
      remoteAddr: options.clientAddress?.(info.remoteAddr) ??
        formatHostPort(info.remoteAddr.hostname, info.remoteAddr.port),
    }));
  const addr = server.addr;
  return {
    addr,
    url: `${options.tls ? "https" : "http"}://${formatHostPort(addr.hostname, addr.port)}`,
    shutdown: () => server.shutdown(),
    finished: server.finished,
  };
}

const STOP_SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM"];

/**
 * Calls `stop` once on the first SIGINT or SIGTERM. Returns a function that
 * removes the listeners (they would otherwise keep the process alive).
 */
export function onStopSignal(stop: (signal: Deno.Signal) => void): () => void {
  const handlers = STOP_SIGNALS.map((signal) => {
    const handler = () => {
      remove();
      stop(signal);
    };
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  const remove = () => {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  };
  return remove;
}
