/**
 * Serving a hono application with Deno: HTTPS or plain HTTP, the peer
 * address passed as the hono env, a TLS certificate swap without closing
 * the port, and graceful stop on SIGINT/SIGTERM.
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
  /**
   * Serves a new certificate and key (HTTPS servers only): a second listener
   * binds the same port (SO_REUSEPORT), then the first stops accepting and
   * finishes its requests. The port never closes.
   */
  swapTls(tls: { cert: string; key: string }): Promise<void>;
}

/**
 * Binds `hostname:port` exclusively and lets it go, returning the port: an
 * HTTPS server shares its port (SO_REUSEPORT) only with its own successor,
 * so a second process started on a port already in use still fails.
 */
function claimPort(hostname: string, port: number): number {
  const probe = Deno.listen({ hostname, port });
  const bound = (probe.addr as Deno.NetAddr).port;
  probe.close();
  return bound;
}

/**
 * True when `--unstable-net` is on (its APIs exist only then). Asking for
 * `reusePort` on a TLS listener without it ends the process, so it is
 * checked first.
 */
function unstableNet(): boolean {
  return "listenDatagram" in Deno;
}

/**
 * Starts serving `app`; returns once the socket is bound (throws if it cannot
 * be). HTTPS servers bind with SO_REUSEPORT (`--unstable-net`) so
 * {@linkcode RunningServer.swapTls} never closes the port; without that flag
 * a swap closes and rebinds it (a few milliseconds of refused connections).
 */
export function serveApp(app: FetchApp, options: ServeAppOptions): RunningServer {
  const reusePort = options.tls !== undefined && unstableNet();
  const listen = (port: number, tls: { cert: string; key: string } | undefined) =>
    Deno.serve({
      hostname: options.hostname,
      port,
      ...(tls ?? {}),
      ...(reusePort ? { reusePort: true } : {}),
      // Silences Deno's default "Listening on" line; callers print their own.
      onListen: () => {},
    }, (request, info) =>
      app.fetch(request, {
        remoteAddr: options.clientAddress?.(info.remoteAddr) ??
          formatHostPort(info.remoteAddr.hostname, info.remoteAddr.port),
      }));
  let server = listen(
    reusePort ? claimPort(options.hostname, options.port) : options.port,
    options.tls,
  );
  const addr = server.addr;
  let stopping = false;
  const { promise: finished, resolve: done } = Promise.withResolvers<void>();
  // `finished` follows whichever listener is current when the server stops.
  const follow = (s: Deno.HttpServer) => {
    s.finished.then(() => {
      if (s === server && stopping) done();
    });
  };
  follow(server);
  return {
    addr,
    url: `${options.tls ? "https" : "http"}://${formatHostPort(addr.hostname, addr.port)}`,
    shutdown: async () => {
      stopping = true;
      await server.shutdown();
      done();
    },
    finished,
    swapTls: async (tls) => {
      if (!options.tls) throw new Error("swapTls: this server serves plain HTTP");
      if (stopping) return;
      const old = server;
      if (reusePort) {
        server = listen(addr.port, tls);
        follow(server);
        await old.shutdown();
      } else {
        await old.shutdown();
        server = listen(addr.port, tls);
        follow(server);
      }
    },
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
