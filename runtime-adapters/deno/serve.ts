/**
 * Serving a hono application with Deno: plain HTTP, or HTTPS and PROXY
 * protocol through the front of ./tls_front.ts, the client address passed as
 * the hono env, a TLS certificate swap on the same listener, and graceful
 * stop (the auth service's SIGINT/SIGTERM: ./entry/auth_signals.ts).
 *
 * @module
 */
import { canonicalIp, formatHostPort } from "../../src/util/host_port.ts";
import type { Logger } from "../../src/util/log.ts";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { ConfigError } from "../../src/errors.ts";
import { toHex } from "../../src/util/encoding.ts";
import {
  frontDirRefused,
  frontPathRefused,
  ownerFault,
  privateDirFault,
  ROOT_RUNTIME_DIR,
  runtimeSocketDirName,
  SOCKET_PATH_MAX,
  socketDirFits,
} from "../../src/cli/auth/front_dir.ts";
import { ensureDir } from "./fs.ts";
import { missingPermission, readEnv } from "./permissions.ts";
import { lstatOrNone, pathFault, processUid, realPath } from "./data_dir_checks.ts";
import { burstLog } from "./tls_front/burst_log.ts";
import {
  type Front,
  FRONT_CLIENT_HEADER,
  type FrontOptions,
  startFront,
  type TlsPair,
} from "./tls_front.ts";

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
  /** Where a restart of the listener after an accept failure is reported. */
  log?: Logger;
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
 * retrying while it cannot be, and the restart is logged.
 */
export function serveApp(app: FetchApp, options: ServeAppOptions): RunningServer {
  let port = options.port;
  const served = keepServing(() =>
    Deno.serve({
      hostname: options.hostname,
      port,
      // Silences Deno's default "Listening on" line; callers print their own.
      onListen: () => {},
    }, (request, info) =>
      app.fetch(request, {
        // On [::] an IPv4 client would otherwise be [::ffff:a.b.c.d]:port.
        remoteAddr: formatHostPort(canonicalIp(info.remoteAddr.hostname), info.remoteAddr.port),
      })), options.log);
  const addr = served.addr;
  port = addr.port;
  return { ...served, url: `http://${formatHostPort(addr.hostname, addr.port)}` };
}

/**
 * Runs the server `listen` starts, and starts it again (after a wait,
 * retrying while it cannot) whenever it stops on its own, until `shutdown`;
 * one warning per shortage.
 */
function keepServing<A extends Deno.NetAddr | Deno.UnixAddr>(
  listen: () => Deno.HttpServer<A>,
  log: Logger | undefined,
): Omit<RunningServer, "addr" | "url"> & { addr: A; replace(): boolean } {
  let server = listen();
  const addr = server.addr;
  let stopping: Promise<void> | undefined;
  /** Whether a server listens (false in the gap while it listens again). */
  let listening = true;
  /** Until when a new failure counts as the same shortage: no new warning, no fresh back-off. */
  let sameShortageUntil = 0;
  let attempts = 0;
  /** Shutdowns of servers replaced (below), still finishing what they hold. */
  const retiring = new Set<Promise<void>>();
  let replaced = Promise.withResolvers<void>();
  const finished = (async () => {
    for (;;) {
      const current = server;
      const error = await Promise.race([
        current.finished.then(() => undefined, (err: unknown) => err),
        replaced.promise,
      ]);
      if (stopping) return;
      // Replaced: the new one is watched now.
      if (current !== server) continue;
      if (error === undefined) return;
      listening = false;
      if (performance.now() >= sameShortageUntil) {
        attempts = 0;
        log?.warn("the HTTP server stopped accepting; listening again", {
          address: "path" in addr ? addr.path : formatHostPort(addr.hostname, addr.port),
          error: error instanceof Error ? error.message : String(error),
        });
      }
      const next = await relisten(listen, () => stopping !== undefined, attempts);
      if (!next) return;
      server = next.server;
      listening = true;
      attempts = next.attempts;
      if (stopping) return await server.shutdown();
      sameShortageUntil = performance.now() + RELISTEN_DELAYS_MS.at(-1)!;
    }
  })();
  return {
    addr,
    shutdown: () => stopping ??= Promise.all([server.shutdown(), ...retiring]).then(() => finished),
    finished,
    // A new server at once; the old one finishes what it holds and stops.
    // `listen` must bind a new path: a Deno.serve on a Unix socket unlinks
    // its path as it stops, some time after shutdown() is called, which
    // would unlink a new socket at the same path. Kept until process
    // shutdown instead, each replaced server held a listener and a
    // descriptor for the process's life (review-ff SF2). In the gap of a
    // listen-again the coming server is the new one already.
    // Throws what listening threw (the caller logs it, once per burst).
    replace() {
      if (stopping || !listening) return false;
      const old = server;
      server = listen();
      const done = old.shutdown().catch(() => {}).finally(() => retiring.delete(done));
      retiring.add(done);
      replaced.resolve();
      replaced = Promise.withResolvers<void>();
      return true;
    },
  };
}

/**
 * Listens again, retrying (delays above from the `attempts`-th, the last
 * repeated): the server and the attempts made so far; null once `stopped()`.
 */
async function relisten<A extends Deno.NetAddr | Deno.UnixAddr>(
  listen: () => Deno.HttpServer<A>,
  stopped: () => boolean,
  attempts: number,
): Promise<{ server: Deno.HttpServer<A>; attempts: number } | null> {
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
  /**
   * The private directory of the server behind the front (the auth service:
   * its data directory's `front`), its socket `PID-RANDOM.sock`: made if missing,
   * 0700 whatever the umask, removed at shutdown once empty; every directory
   * above it, up to `/`, must be one only root or this user may change (its
   * parent's links resolved first; docs/security.md). If a socket
   * there could be too long (over 107 bytes), a directory in
   * {@linkcode ServeServiceOptions.runtimeDir} instead, or for root in
   * `/run/keybound`; else the start is refused (src/cli/auth/front_dir.ts).
   */
  socketDir: string;
  /**
   * The runtime directory for a `socketDir` too long: default
   * `$XDG_RUNTIME_DIR`; given as undefined, none (root's `/run/keybound`).
   */
  runtimeDir?: string;
  /** The front's connection caps (defaults in ./tls_front.ts) and its event counter. */
  front?: Pick<
    FrontOptions,
    "maxConnections" | "maxConnectionsPerSource" | "maxConnectionRatePerSource" | "onEvent"
  >;
}

/**
 * Throws the refusal {@linkcode serveService} would meet for `socketDir` (a
 * ConfigError naming the fix): the auth service asks before it makes, opens
 * or writes anything in its data directory (review-front S1). For a
 * `socketDir` that fits, the directories on its path up to `/` (those that
 * exist) and `socketDir` itself if it exists are checked; for one too long,
 * the runtime directory's place is taken and released again. The data
 * directory's own checks, whatever the socket's place, are
 * {@linkcode checkDataDir}'s and {@linkcode takeDataDir}'s.
 */
export async function checkSocketDir(
  socketDir: string,
  runtimeDir: string | undefined = readEnv("XDG_RUNTIME_DIR"),
): Promise<void> {
  const uid = processUid(true);
  const wanted = realSocketDir(socketDir, uid);
  if (socketDirFits(wanted)) return checkFrontPath(wanted, uid);
  const place = await privateSocket(socketDir, runtimeDir);
  releasePlace(place, join(place.dir, `${place.base}.sock`));
}

/** `socketDir` with its parent's real path: `socketDir` itself must not be a link. */
function realSocketDir(socketDir: string, uid: number): string {
  return join(realPath(dirname(resolve(socketDir)), uid), basename(socketDir));
}

/**
 * Throws unless the data directory holding `wanted` (its `front`, a real
 * path) and every directory above it may be changed only by root or `uid`,
 * and `wanted`, if there, is a directory (not a link) of `uid`'s.
 */
function checkFrontPath(wanted: string, uid: number): void {
  const data = dirname(wanted);
  const bad = pathFault(data, uid);
  if (bad) throw frontPathRefused("--data-dir", data, bad.component, bad.fault);
  const info = lstatOrNone(wanted);
  if (info?.isSymlink) {
    throw new ConfigError(
      `${wanted} is a symbolic link: the directory of the server behind the TLS front ` +
        `(front in --data-dir ${data}) must be a directory of its own; remove the link, and ` +
        "the next start makes the directory (0700)",
    );
  }
  const fault = info && ownerFault(info, uid);
  if (fault !== undefined) throw frontDirNotMine(wanted, fault);
}

/** The refusal of `wanted` (a data directory's `front`) that is not this user's directory. */
function frontDirNotMine(wanted: string, fault: string): ConfigError {
  return new ConfigError(
    `${wanted}, the directory of the server behind the TLS front (front in --data-dir ` +
      `${dirname(wanted)}), must be this user's: ${fault}: remove it, and the next start ` +
      "makes it",
  );
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
 * `proxyFrom`, `Deno.serve` listens on a Unix socket in a private directory
 * behind the public front of ./tls_front.ts (TCP_NODELAY, in-place
 * certificate swaps, PROXY headers), and requests carry the client address
 * the front saw.
 *
 * Why a Unix socket in a directory only this process's user can enter,
 * rather than a loopback port: `Deno.serve` stops for good when an accept
 * fails (out of descriptors), and its freed loopback port was anyone's to
 * take before this process could know it was freed: the front would have
 * passed decrypted requests, bearer tokens included, to whoever took it
 * (rereview-front M1, final-review M1 of session 8), so the server failed
 * closed and the process exited. No other user can bind or connect in the
 * directory, so the server now listens again on the same path.
 *
 * The client address travels with each request: the front adds a header
 * line after the request line ({@linkcode FRONT_CLIENT_HEADER}) with a
 * random token of the connection, which only it can turn into the address
 * (a request whose client sent the header too is refused); a request
 * without a known token (a local process of the same user) is refused. Over loopback TCP the front's source port named the
 * connection; a Unix socket's peer has no name. The header is left on the
 * request (an incoming request's headers cannot be changed, and a copy
 * without it cost ~37 µs per request): a token is worth nothing once its
 * connection is gone and only ever named that connection's own client.
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
  const place = await privateSocket(
    options.socketDir,
    "runtimeDir" in options ? options.runtimeDir : readEnv("XDG_RUNTIME_DIR"),
  );
  const firstPath = join(place.dir, `${place.base}.sock`);
  /**
   * Where the server listens now, read by the front at each connect: a heal
   * listens at `NAME.GEN.sock` beside `NAME.sock`, so the server it
   * replaces can stop at once (its unlink hits only its own path).
   */
  let socketPath = firstPath;
  /**
   * Work of requests whose clients have gone, let go by their connections
   * (whileThere): awaited at shutdown as Deno.serve awaits its handlers, so
   * that the process closes its storage only after it.
   */
  const leftBehind = new Set<Promise<void>>();
  let generation = 0;
  let front: Front | undefined;
  /** The socket this process bound last (inode, owner): another at the path is not its own. */
  let bound: { ino: number; uid: number } | null = null;
  // Until the front is up, a failure removes what privateSocket made (review-so M2).
  const inner = orRelease(place, () =>
    keepServing(() => {
      const path = socketPath;
      // Left by the server that stopped (or by nothing: the name is this
      // process's alone): the path must be free to listen on again.
      try {
        Deno.removeSync(path);
      } catch {
        // Not there.
      }
      const server = Deno.serve({ path, onListen: () => {} }, (request) => {
        const token = front && liveToken(request, front);
        if (token === undefined) return new Response("Bad Request\n", { status: 400 });
        const answer = app.fetch(request, { remoteAddr: front!.clientOf(token) });
        return answer instanceof Response ? answer : whileThere(answer, front!, token, leftBehind);
      });
      const info = Deno.lstatSync(path);
      bound = { ino: info.ino!, uid: info.uid! };
      return server;
    }, options.log));
  // The socket deleted under a live server (an operator's rm, a cleaner, a
  // restore): Deno.serve listens on the unlinked inode and never fails,
  // so without this every connection would fail for the process's life
  // (review-front S1). Only when the path no longer holds this process's
  // socket: a refused connect in a listen-again gap heals on its own.
  // A heal that fails (its directory cannot be made again, say) would
  // otherwise log one line per connection: a rate remote peers set (review-ff SF3).
  const cannotListen = burstLog(
    options.log,
    "server_unreachable",
    "the HTTP server lost its socket and cannot listen again yet",
    "listening again",
  );
  /**
   * Whether the socket path still leads to this process's server: its
   * directory is the one recorded (lstat: a directory, same device, inode
   * and owner, mode 0700) and the socket there is the one it bound. Asked
   * before each connect (two lstat, ~7 µs, under 1% of a connection), as
   * defence in depth: the walk of the path (at the start and at each heal)
   * keeps other users from changing it, but only while root and this user
   * keep the directories above as they were; one loosened after the start
   * (a chmod 0777, a chown), or a data directory in the sticky /tmp deleted
   * whole by root's cleaner, would otherwise let another user put their own
   * socket at the path, and a connect to it succeeds, so no heal would ever
   * run (review-front M1 showed the attack once the check had gone). And
   * when a connect fails: a refused connect in a listen-again gap heals on
   * its own. A change between the check and the connect, microseconds,
   * still gets that connection (docs/security.md).
   */
  const intact = (): boolean => {
    try {
      const dir = Deno.lstatSync(place.dir);
      if (!isPlace(dir, place) || (dir.mode! & 0o777) !== 0o700) return false;
      const socket = Deno.lstatSync(socketPath);
      return socket.ino === bound?.ino && socket.uid === bound.uid;
    } catch {
      return false;
    }
  };
  // Synchronous (a rare path): the server listens again before the next
  // connection tries it. False if it could not (logged by cannotListen).
  const listenAgain = (): boolean => {
    try {
      // The whole directory may be gone (rm -rf, a cleaner), or be another
      // one at its name: never used unless this user's, in its parent (review-so M1).
      reclaimDir(place, options.log);
      const before = socketPath;
      socketPath = join(place.dir, `${place.base}.${++generation}.sock`);
      let replaced = false;
      try {
        replaced = inner.replace();
      } finally {
        // Not listening there: the next try takes the same name (a name's GEN stays within
        // SOCKET_NAME_MAX however many connections meet a listen-again gap), and until
        // then target.path leads nowhere unless intact().
        if (!replaced) {
          socketPath = before;
          generation--;
        }
      }
      if (!replaced) return false;
      cannotListen.over();
      options.log.warn("the socket of the server behind the front was gone; listening again", {
        path: socketPath,
      });
      return true;
    } catch (err) {
      cannotListen.note(err instanceof Error ? err.message : String(err));
      return false;
    }
  };
  const heal = (err: unknown) => {
    const code = (err as { code?: string } | null)?.code;
    if (code !== "ENOENT" && code !== "ECONNREFUSED") return;
    // Still there: a refused connect in a listen-again gap heals on its own.
    if (intact()) return;
    listenAgain();
  };
  /**
   * What the front connects to, read at each connect: the socket if
   * intact(), else where a heal listens now; if no heal could listen, a
   * path too long to be a socket's ({@linkcode UNREACHABLE_NAME}), so that
   * the connection fails rather than reach a socket this process did not
   * bind. The next connection checks and heals again.
   */
  const unreachablePath = join(place.dir, UNREACHABLE_NAME);
  const target = {
    get path(): string {
      return intact() || listenAgain() ? socketPath : unreachablePath;
    },
  };

  // Not recursively: only what this server made goes (Deno.serve removes
  // its socket as it stops, but not one it lost to a failed accept), and
  // the directory only once no other process's socket is in it. The lock
  // file last: while it is held, no other start takes the socket for a
  // dead process's.
  const removeDir = () => releasePlace(place, socketPath);
  try {
    front = await startFront({
      hostname: options.hostname,
      port: options.port,
      ...(options.tls ? { tls: options.tls } : {}),
      balancers: new Set(proxyFrom),
      // The object itself: a heal changes its path.
      target,
      tagRequests: true,
      log: options.log,
      ...options.front,
      onUnreachable: heal,
    });
  } catch (err) {
    await inner.shutdown();
    await removeDir();
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
        await Promise.all(leftBehind);
        await started.drain();
        await removeDir();
      })(),
    finished: inner.finished.then(() => stopping),
    swapTls: (tls) => started.setTls(tls),
  };
}

/**
 * A name no socket can have: longer than a socket's path may be, so that a
 * connect to it in the socket's directory fails with EINVAL (which starts no
 * heal) before the kernel looks anything up. Not a path under a file
 * (ENOTDIR): the connect is refused exactly when the directory may be
 * another user's, who could put a directory with a socket at any name in it;
 * nor under /dev/null: Deno guards /dev, and the front logged "Requires all
 * access … run again with the --allow-all flag" under the task's own flags
 * (review-front2 S2). In the socket's directory it is within any
 * --allow-write the server's own socket needs.
 */
const UNREACHABLE_NAME = `unreachable-${"x".repeat(SOCKET_PATH_MAX)}.sock`;

/**
 * A lock file younger than this is not swept even if its lock is free: its
 * process may have made it and not locked it yet.
 */
const LOCK_SETTLE_MS = 10_000;

/**
 * Where the server behind the front listens: `PID-RANDOM.sock` in `wanted`
 * (the auth service's `front` in its data directory), or, if a socket there
 * could have a path over {@linkcode SOCKET_PATH_MAX} bytes, in a directory
 * of the runtime directory (see {@linkcode runtimeSocketDir}); never in a
 * directory other users may write (docs/security.md). The directory is made
 * 0700 whatever the umask (only this user may bind or connect in it; several
 * processes may share it, each with its own socket: the random part keeps
 * apart processes that are each PID 1 in their own container, and no other
 * user can read it to aim at the socket); `PID-RANDOM.lock` beside the
 * socket is held locked for the process's life. `wanted` must not be a
 * symbolic link: one planted there would take the socket, and the sweep,
 * into the directory it names (review-front N2); its parent's links are
 * resolved (a --data-dir that is a link, review-front M2). The directory
 * must be this user's, and every directory above it, up to `/`, one only
 * root or this user may change ({@linkcode pathComponentFault}), checked
 * before anything is made: otherwise another user could move the data
 * directory aside and bind their own socket at the path, getting the
 * decrypted requests (review-front M1).
 *
 * A start removes the socket and lock file of a process that is provably
 * gone: its lock file's lock could be taken (the kernel frees it when its
 * holder dies, SIGKILL included). Never because a connect failed: a live
 * process whose backlog is full, that is paused, or on another host sharing
 * the directory does not answer either, and lost its socket for good
 * (review-front S1). A socket without a lock file is of a version before
 * lock files (or of a process killed during its shutdown): it is removed
 * only if a connect is refused, which on a Unix socket means nothing
 * listens on it (a full backlog is EAGAIN, not a refusal).
 */
async function privateSocket(given: string, runtimeDir: string | undefined): Promise<SocketPlace> {
  const uid = processUid(true);
  const wanted = realSocketDir(given, uid);
  const base = `${Deno.pid}-${toHex(crypto.getRandomValues(new Uint8Array(8)))}`;
  let dir = wanted;
  let refuse = (fault: string) => frontDirNotMine(wanted, fault);
  let denied = () =>
    new ConfigError(
      `${wanted}, the directory of the server behind the TLS front, is not this user's: ` +
        "this process may not make it private (chmod 0700); remove it, and the next start " +
        "makes it",
    );
  if (socketDirFits(wanted)) {
    // Before anything is made (review-front S1), and again on what ensureDir made or found:
    // another user may have made a missing part first, in a sticky directory.
    checkFrontPath(wanted, uid);
    await ensureDir(wanted, 0o700);
    checkFrontPath(wanted, uid);
  } else {
    ({ dir, refuse, denied } = await runtimeSocketDir(wanted, runtimeDir, uid));
  }
  const place = takeDir(dir, base, uid, refuse, denied);
  await sweepDead(dir);
  return place;
}

/**
 * The socket's directory when `wanted` is too long for it:
 * `$XDG_RUNTIME_DIR/keybound-HASH` (`runtimeDir`, which must be a directory,
 * not a link, mode 0700, of this user: the XDG Base Directory
 * specification's rules), or for root without it `/run/keybound/HASH`;
 * every directory above checked ({@linkcode pathFault}) before anything is
 * made, then made 0700 if missing; and the refusal to throw if takeDir
 * finds the directory is not `uid`'s. Anything else refuses the start: a
 * directory other users may change is never used (the temporary directory
 * was, until session 12: review-3 MUST-FIX 1 and 2).
 */
async function runtimeSocketDir(
  wanted: string,
  runtimeDir: string | undefined,
  uid: number,
): Promise<{ dir: string; refuse: (fault: string) => ConfigError; denied: () => ConfigError }> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(wanted));
  const hash = toHex(new Uint8Array(digest));
  let parent: string;
  let refuse: (fault: string) => ConfigError;
  /** Not allowed here: this process is not root (or may not write there). */
  let notMine: () => ConfigError;
  if (runtimeDir !== undefined && runtimeDir !== "") {
    refuse = (fault) => frontDirRefused(wanted, { kind: "runtime-dir", dir: runtimeDir, fault });
    notMine = () => refuse("this process may not make a directory in it");
    if (!isAbsolute(runtimeDir)) throw refuse("it is not an absolute path");
    // The owner too, before anything is made in it (review-front S2).
    const fault = privateDirFault(lstatOrNone(runtimeDir), { exact: true, uid });
    if (fault !== undefined) throw refuse(fault);
    // Not a link itself (above); links above it resolved, and every directory up to / checked.
    parent = realPath(runtimeDir, uid, "XDG_RUNTIME_DIR");
    const bad = pathFault(parent, uid);
    if (bad) throw frontPathRefused("XDG_RUNTIME_DIR", runtimeDir, bad.component, bad.fault);
  } else {
    refuse = (fault) => frontDirRefused(wanted, { kind: "root-dir", fault });
    notMine = () => frontDirRefused(wanted, { kind: "no-runtime-dir" });
    if (uid !== 0) throw notMine();
    // A prompt (or an uncaught NotCapable) under a narrowed --allow-write: this process's own line.
    const unwritable = missingPermission({ name: "write", path: ROOT_RUNTIME_DIR }, "auth");
    if (unwritable !== undefined) throw refuse(unwritable);
    const above = realPath(dirname(ROOT_RUNTIME_DIR), uid, ROOT_RUNTIME_DIR);
    const bad = pathFault(above, uid);
    if (bad) throw frontPathRefused(ROOT_RUNTIME_DIR, above, bad.component, bad.fault);
    parent = join(above, basename(ROOT_RUNTIME_DIR));
    makeDir(parent, notMine, refuse);
    const fault = privateDirFault(lstatOrNone(parent), { uid });
    if (fault !== undefined) throw refuse(fault);
  }
  const dir = join(parent, runtimeSocketDirName(hash, parent));
  if (!socketDirFits(dir)) {
    throw refuse(`a socket in ${dir} would be longer than ${SOCKET_PATH_MAX} bytes`);
  }
  makeDir(dir, notMine, refuse);
  return { dir, refuse: (fault) => refuse(`${dir}: ${fault}`), denied: notMine };
}

/** `mkdir` 0700 of `dir` if missing; a refusal if it may not be made. */
function makeDir(
  dir: string,
  notMine: () => ConfigError,
  refuse: (fault: string) => ConfigError,
): void {
  try {
    Deno.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return;
    if (err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable) {
      throw notMine();
    }
    throw refuse(err instanceof Error ? err.message : String(err));
  }
}

/**
 * Where the server behind the front listens: `BASE.sock` (a heal's
 * `BASE.GEN.sock`) and `BASE.lock` in `dir`, and what identifies `dir` as
 * the directory this process took at its start (or made again at a heal)
 * and made 0700: a heal uses nothing else found at that name.
 */
interface SocketPlace {
  dir: string;
  base: string;
  lock: { path: string; file: Deno.FsFile };
  dev: number;
  ino: number;
  /** This process's uid: the owner of the lock file it made. */
  uid: number;
}

/**
 * Makes `dir` 0700, records it and holds `BASE.lock` in it. Its owner is
 * checked before the chmod (`refuse`; `denied` when this user may not
 * chmod it): only root or `uid` may change its parent (checked by the
 * caller), so the name cannot be swapped in between (review-front S2).
 * Synchronous: a heal runs inside the front's connect.
 */
function takeDir(
  dir: string,
  base: string,
  uid: number,
  refuse: (fault: string) => ConfigError,
  denied: () => ConfigError,
): SocketPlace {
  const fault = ownerFault(lstatOrNone(dir), uid);
  if (fault !== undefined) throw refuse(fault);
  try {
    Deno.chmodSync(dir, 0o700);
  } catch (err) {
    if (err instanceof Deno.errors.PermissionDenied) throw denied();
    throw err;
  }
  const info = Deno.lstatSync(dir);
  const lock = holdLock(join(dir, `${base}.lock`));
  return { dir, base, lock, dev: info.dev, ino: info.ino!, uid };
}

/**
 * Before a heal listens again: `place`'s directory if it is still the one
 * this process took (same device and inode, same owner: 0700 again if its
 * mode changed, the lock file made again if it went); else, if its parent
 * is still a directory of this user that no other user may write, the
 * directory made again (a plain `mkdir`, which fails if something else made
 * it meanwhile) or, found there, a directory of this user (put back by a
 * restore, say: only this user or root could have), made 0700. Anything
 * else (a link, another user's directory, a parent replaced) throws: the
 * heal logs it and tries again at the next connection. The name is never
 * followed anywhere else (review-so M1; the fresh temporary directory it
 * once moved to is gone with the fallback).
 */
function reclaimDir(place: SocketPlace, log: Logger): void {
  // The walk of the start, again, at every heal: the directories above may have changed since.
  const parent = dirname(place.dir);
  const bad = pathFault(parent, place.uid);
  if (bad !== undefined) {
    throw new ConfigError(
      `not listening in ${parent} again: ${bad.component === parent ? "" : `${bad.component}: `}` +
        bad.fault,
    );
  }
  const info = lstatOrNone(place.dir);
  if (info && isPlace(info, place)) {
    if ((info.mode & 0o777) !== 0o700) Deno.chmodSync(place.dir, 0o700);
    try {
      const lock = holdLock(place.lock.path);
      place.lock.file.close();
      place.lock = lock;
    } catch (err) {
      // Still there (only the socket went): this process holds it.
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
    return;
  }
  if (info === undefined) {
    Deno.mkdirSync(place.dir, { mode: 0o700 });
  } else {
    const fault = ownerFault(info, place.uid);
    if (fault !== undefined) throw new ConfigError(`not listening in ${place.dir}: ${fault}`);
    log.warn("the directory of the server behind the front was replaced; listening in it", {
      dir: place.dir,
    });
  }
  const next = takeDir(
    place.dir,
    place.base,
    place.uid,
    (fault) => new ConfigError(`not listening in ${place.dir}: ${fault}`),
    () => new ConfigError(`not listening in ${place.dir}: this process may not chmod it 0700`),
  );
  place.lock.file.close();
  Object.assign(place, next);
}

/**
 * Removes `socket`, then `place`'s lock file, then its directory (only if
 * empty: another process's socket may be in it). The lock file last: while
 * it is held, no other start takes the socket for a dead process's.
 */
function releasePlace(place: SocketPlace, socket: string): void {
  place.lock.file.close();
  // Only inside the directory this process took: anything else at its name is not its to empty
  // (review-3 MUST-FIX 2).
  if (!isPlaceDir(place)) return;
  for (const path of [socket, place.lock.path]) {
    try {
      Deno.removeSync(path);
    } catch {
      // Not there.
    }
  }
  try {
    Deno.removeSync(place.dir);
  } catch {
    // Not empty, or gone.
  }
}

/** Whether `info` (an lstat, not following links) is the directory `place` recorded. */
function isPlace(info: Deno.FileInfo, place: SocketPlace): boolean {
  return info.isDirectory && info.dev === place.dev && info.ino === place.ino &&
    info.uid === place.uid;
}

/** Whether `place.dir` is still the directory this process took. */
function isPlaceDir(place: SocketPlace): boolean {
  try {
    return isPlace(Deno.lstatSync(place.dir), place);
  } catch {
    return false;
  }
}

/** `start()`; if it throws, what `place` holds is released first: a failed start leaves nothing. */
function orRelease<T>(place: SocketPlace, start: () => T): T {
  try {
    return start();
  } catch (err) {
    releasePlace(place, join(place.dir, `${place.base}.sock`));
    throw err;
  }
}

/**
 * Makes `path` and holds it locked (exclusive) for the process's life;
 * a lock that another process holds already is an error, and the file
 * goes (review-so N3: a heal took `false` for a lock).
 */
function holdLock(path: string): { path: string; file: Deno.FsFile } {
  const file = Deno.openSync(path, { write: true, createNew: true, mode: 0o600 });
  // Where locking fails (throws) the file is kept unlocked. An NFS mount with host-local
  // locks (nolock, local_lock=flock) does not fail: another host sharing
  // the directory could then take this lock and sweep a live socket, which
  // the heal recovers (docs/operations.md).
  let locked: boolean;
  try {
    locked = file.tryLockSync(true);
  } catch {
    locked = true;
  }
  if (!locked) {
    file.close();
    try {
      Deno.removeSync(path);
    } catch {
      // Gone already.
    }
    throw new ConfigError(`cannot lock ${path}, a file this process just made`);
  }
  return { path, file };
}

/** Removes the sockets and lock files in `dir` of processes that are gone (see privateSocket). */
async function sweepDead(dir: string): Promise<void> {
  const entries = [];
  for await (const entry of Deno.readDir(dir)) entries.push(entry);
  const names = entries.map((e) => e.name);
  for (const entry of entries) {
    if (!entry.isFile || !entry.name.endsWith(".lock")) continue;
    const lockPath = join(dir, entry.name);
    const info = await Deno.lstat(lockPath).catch(() => undefined);
    if (!info?.isFile || Date.now() - (info.mtime?.getTime() ?? Date.now()) < LOCK_SETTLE_MS) {
      continue;
    }
    let file: Deno.FsFile;
    try {
      file = await Deno.open(lockPath, { read: true, write: true });
    } catch {
      continue; // Removed meanwhile by its process, or by another start.
    }
    try {
      // Its process lives (or the filesystem has no locks: nothing is proven).
      if (!(await file.tryLock(true).catch(() => false))) continue;
      // NAME.sock, and NAME.GEN.sock of its heals.
      const name = entry.name.slice(0, -".lock".length);
      for (const n of names) {
        if (socketBase(n) === name) await Deno.remove(join(dir, n)).catch(() => {});
      }
      await Deno.remove(lockPath).catch(() => {});
    } finally {
      file.close();
    }
  }
  // Sockets without a lock file (see privateSocket): a process makes its lock file before its
  // socket, so a socket listed without one is of an older version, or its lock was just made.
  for (const n of names) {
    const base = socketBase(n);
    if (base === undefined || names.includes(`${base}.lock`)) continue;
    const path = join(dir, n);
    const info = await Deno.lstat(path).catch(() => undefined);
    if (!info?.isSocket || Date.now() - (info.mtime?.getTime() ?? Date.now()) < LOCK_SETTLE_MS) {
      continue;
    }
    if (await refusesConnect(path)) await Deno.remove(path).catch(() => {});
  }
}

/** `NAME` of `NAME.sock` or `NAME.GEN.sock` (a heal's); undefined for any other name. */
function socketBase(name: string): string | undefined {
  return /^(.+?)(\.\d+)?\.sock$/.exec(name)?.[1];
}

/** True if a connect to the Unix socket at `path` is refused: nothing listens on it. */
async function refusesConnect(path: string): Promise<boolean> {
  try {
    (await Deno.connect({ transport: "unix", path })).close();
    return false;
  } catch (err) {
    return err instanceof Deno.errors.ConnectionRefused;
  }
}

/**
 * The token `request` carries, if it names a connection whose client
 * address the front knows; undefined (the request is refused) unless the
 * header has exactly one value and it is a live token. The front adds one line per request; a
 * second value (instances are joined with ", ") is the client's own, which
 * no legitimate client sends: taking the first live one honoured a token
 * a client had learned, on a request that reached the server untagged
 * (review-front S3).
 */
function liveToken(request: Request, front: Front): string | undefined {
  const value = request.headers.get(FRONT_CLIENT_HEADER);
  if (value === null || value.includes(",")) return undefined;
  return front.clientOf(value) === undefined ? undefined : value;
}

/**
 * `answer`, or a 503 no one reads as soon as the client of the connection
 * whose token is `token` has gone: `Deno.serve` keeps a connection (its
 * descriptor) until the handler returns, even once the front has passed
 * the client's close on, so a handler waiting on a slow or unreachable
 * storage backend kept 2 descriptors per client reset for its whole wait
 * (review-front N1: 20 resets against a waiting handler, +40 descriptors).
 * The app's work goes on to its end (what was forwarded is still handled),
 * holding the connection's slot of its source's cap until then
 * (`Front.keepSlot`), and shutdown waits for it (`leftBehind`): only the
 * connection is let go. Not `request.signal`: reading it cost ~40
 * µs per request (Deno 2.9.6) and prints a warning; this costs ~2-4 µs.
 */
function whileThere(
  answer: Promise<Response>,
  front: Front,
  token: string,
  leftBehind: Set<Promise<void>>,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const forget = front.onClientGone(token, () => {
      const done = front.keepSlot(token);
      const work: Promise<void> = answer.then(() => {}, () => {}).then(() => {
        done();
        leftBehind.delete(work);
      });
      leftBehind.add(work);
      resolve(new Response(null, { status: 503 }));
    });
    answer.then((r) => {
      forget();
      resolve(r);
    }, (err) => {
      forget();
      reject(err);
    });
  });
}
