/**
 * Serving a hono application with Deno: plain HTTP, or HTTPS and PROXY
 * protocol through the front of ./tls_front.ts, the client address passed as
 * the hono env, a TLS certificate swap on the same listener, and graceful
 * stop on SIGINT/SIGTERM.
 *
 * @module
 */
import { canonicalIp, formatHostPort } from "../../src/util/host_port.ts";
import type { Logger } from "../../src/util/log.ts";
import { type Front, type FrontOptions, startFront, type TlsPair } from "./tls_front.ts";

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
  /** The client's address for a peer, when a front knows it better. */
  clientAddress?: (peer: Deno.NetAddr) => string | undefined;
  /** Where a restart of the listener after an accept failure is reported. */
  log?: Logger;
  /**
   * Whether to listen again after `Deno.serve` stopped on its own (default
   * true). False for the loopback server behind the front: its freed port is
   * anyone's to take before this process could know it was freed, and the
   * front would pass decrypted requests to whoever took it; `finished`
   * rejects instead and the process fails closed.
   */
  relisten?: boolean;
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

/** Waits between two tries to listen again after `Deno.serve` stopped on its own. */
const RELISTEN_DELAYS_MS = [0, 50, 100, 250, 500, 1_000];

/**
 * Starts serving `app` over plain HTTP with `Deno.serve`; returns once the
 * socket is bound (throws if it cannot be). The auth service's public
 * listener is {@linkcode serveService}, which puts this behind a front for
 * TLS and the PROXY protocol.
 *
 * `Deno.serve` (Deno 2.9) stops listening for good at its first failed
 * accept, "Too many open files" included: a process briefly out of
 * descriptors would serve nothing again and exit. So until `shutdown` the
 * same address is listened on again (the port was freed with the listener),
 * retrying while it cannot be, and the restart is logged; unless `relisten`
 * is false (the loopback server behind the front: see there).
 */
export function serveApp(app: FetchApp, options: ServeAppOptions): RunningServer {
  const listen = (port: number) =>
    Deno.serve({
      hostname: options.hostname,
      port,
      // Silences Deno's default "Listening on" line; callers print their own.
      onListen: () => {},
    }, (request, info) =>
      app.fetch(request, {
        remoteAddr: options.clientAddress?.(info.remoteAddr) ??
          // On [::] an IPv4 client would otherwise be [::ffff:a.b.c.d]:port.
          formatHostPort(canonicalIp(info.remoteAddr.hostname), info.remoteAddr.port),
      }));
  let server = listen(options.port);
  const addr = server.addr;
  let stopping: Promise<void> | undefined;
  /** Until when a new failure counts as the same shortage: no new warning, no fresh back-off. */
  let sameShortageUntil = 0;
  let attempts = 0;
  const finished = (async () => {
    for (;;) {
      const error = await server.finished.then(() => undefined, (err: unknown) => err);
      if (stopping || error === undefined) return;
      if (options.relisten === false) throw error;
      if (performance.now() >= sameShortageUntil) {
        attempts = 0;
        options.log?.warn("the HTTP server stopped accepting; listening again", {
          address: formatHostPort(addr.hostname, addr.port),
          error: error instanceof Error ? error.message : String(error),
        });
      }
      const next = await relisten(
        () => listen(addr.port),
        () => stopping !== undefined,
        attempts,
      );
      if (!next) return;
      server = next.server;
      attempts = next.attempts;
      if (stopping) return await server.shutdown();
      sameShortageUntil = performance.now() + RELISTEN_DELAYS_MS.at(-1)!;
    }
  })();
  return {
    addr,
    url: `http://${formatHostPort(addr.hostname, addr.port)}`,
    shutdown: () => stopping ??= server.shutdown().then(() => finished),
    finished,
  };
}

/**
 * Listens again, retrying (delays above from the `attempts`-th, the last
 * repeated): the server and the attempts made so far; null once `stopped()`.
 */
async function relisten(
  listen: () => Deno.HttpServer<Deno.NetAddr>,
  stopped: () => boolean,
  attempts: number,
): Promise<{ server: Deno.HttpServer<Deno.NetAddr>; attempts: number } | null> {
  for (;; attempts++) {
    await new Promise((r) =>
      setTimeout(r, RELISTEN_DELAYS_MS[Math.min(attempts, RELISTEN_DELAYS_MS.length - 1)])
    );
    if (stopped()) return null;
    try {
      return { server: listen(), attempts: attempts + 1 };
    } catch {
      // Still short of descriptors: the warning above stands for the whole shortage.
    }
  }
}

/** Options of {@linkcode serveService}. */
export interface ServeServiceOptions {
  /** Public interface. */
  hostname: string;
  /** Public port; 0 picks a free one. */
  port: number;
  /** Certificate chain and key, PEM; omit for plain HTTP. */
  tls?: TlsPair;
  /** Balancer addresses whose connections start with a PROXY protocol v2 header. */
  proxyFrom?: readonly string[];
  /** Where the front reports connections it dropped. */
  log: Logger;
  /** The front's connection caps (defaults in ./tls_front.ts) and its event counter. */
  front?: Pick<
    FrontOptions,
    "maxConnections" | "maxConnectionsPerSource" | "maxConnectionRatePerSource" | "onEvent"
  >;
}

/** The auth service's public server. */
export interface ServiceServer extends RunningServer {
  /**
   * Serves a new certificate and key (HTTPS only) to every connection
   * accepted from now on, on the same listener: the port never closes and
   * no connection is reset; open connections keep the certificate they
   * were accepted with. Throws, serving the old one, if the pair is unusable.
   */
  swapTls(tls: TlsPair): void;
}

/**
 * Starts the auth service's public server; resolves once it listens. Plain
 * HTTP with no balancer is {@linkcode serveApp} itself; with TLS or
 * `proxyFrom`, `Deno.serve` listens on a private loopback port behind the
 * public front of ./tls_front.ts (TCP_NODELAY, in-place certificate swaps,
 * PROXY headers), and requests carry the client address the front saw.
 */
export async function serveService(
  app: FetchApp,
  options: ServeServiceOptions,
): Promise<ServiceServer> {
  const proxyFrom = options.proxyFrom ?? [];
  if (!options.tls && proxyFrom.length === 0) {
    return {
      ...serveApp(app, options),
      swapTls: () => {
        throw new Error("swapTls: this server serves plain HTTP");
      },
    };
  }
  let front: Front | undefined;
  const inner = serveApp(app, {
    hostname: "127.0.0.1",
    port: 0,
    clientAddress: (peer) => front?.clientAddress(peer),
    log: options.log,
    relisten: false,
  });
  try {
    front = await startFront({
      hostname: options.hostname,
      port: options.port,
      ...(options.tls ? { tls: options.tls } : {}),
      balancers: new Set(proxyFrom),
      target: { hostname: "127.0.0.1", port: inner.addr.port },
      log: options.log,
      ...options.front,
    });
  } catch (err) {
    await inner.shutdown();
    throw err;
  }
  const { addr } = front;
  const started = front;
  let stopping: Promise<void> | undefined;
  return {
    addr,
    url: `${options.tls ? "https" : "http"}://${formatHostPort(addr.hostname, addr.port)}`,
    // No new connections; Deno.serve finishes the requests in flight and
    // closes its connections; the front passes their last bytes on and
    // closes the public side.
    shutdown: () =>
      stopping ??= (async () => {
        started.stopAccepting();
        await inner.shutdown();
        await started.drain();
      })(),
    finished: inner.finished.then(() => stopping),
    swapTls: (tls) => started.setTls(tls),
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
