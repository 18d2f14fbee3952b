/**
 * The auth service's public listener whenever it serves TLS or reads PROXY
 * protocol v2 headers: it accepts the connection, reads and strips the PROXY
 * header (mandatory from a configured balancer address, never read from
 * anyone else), terminates TLS, and passes the plaintext to the real server,
 * `Deno.serve` on a Unix socket in a private directory (../serve.ts). The
 * server learns the client's address from a header line the front adds to
 * each request ({@linkcode FRONT_CLIENT_HEADER}): a random token of the
 * connection, which {@linkcode Front.clientOf} turns into the address.
 *
 * Why not `Deno.serve`'s own TLS: its sockets have no TCP_NODELAY (Deno
 * 2.9.6, no option), so an answer written in two pieces waits for the
 * client's delayed ACK: 44 ms per request over HTTP/1.1, 88 over HTTP/2
 * (bench/tls_request_latency.ts). Here every accepted socket gets
 * `setNoDelay(true)` before its first byte. And why `node:tls`: a new
 * certificate is a new secure context for the connections accepted after it
 * ({@linkcode Front.setTls}), on the same listener, so a swap neither closes
 * the port nor resets a connection. Only HTTP/1.1 is offered (ALPN): the
 * loopback server behind speaks it, and a second protocol would gain a
 * request/answer exchange nothing. Connections are accepted with
 * `Deno.listen` and handed to `node:tls` as streams (./tls_front/streams.ts):
 * it survives a moment without descriptors, which `node:net`'s server does
 * not. What one source, and all of them, can hold is capped
 * ({@linkcode CONNECTIONS_PER_SOURCE}, {@linkcode CONNECTIONS_MAX}), and so
 * is how fast one source opens them ({@linkcode CONNECTION_RATE_PER_SOURCE}); what the
 * front refuses or closes on its own is reported for the metrics
 * (src/server/metrics.ts names them). The limits are in
 * ./tls_front/limits.ts; requests are passed one at a time by
 * ./tls_front/pass_requests.ts.
 *
 * @module
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import net from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import { ConfigError } from "../../src/errors.ts";
import type { FrontEvent } from "../../src/server/metrics.ts";
import { sourceAddress } from "../../src/server/rate_limit/source.ts";
import { SourceSlots } from "../../src/server/rate_limit/source_slots.ts";
import { TokenBuckets } from "../../src/server/rate_limit/token_bucket.ts";
import { canonicalIp, formatHostPort } from "../../src/util/host_port.ts";
import type { Logger } from "../../src/util/log.ts";
import { burstLog } from "./tls_front/burst_log.ts";
import {
  ANSWER_GRACE_MS,
  ANSWER_MIN_BYTES_PER_S,
  awaitingHeaderMax,
  CLOSE_GRACE_MS,
  CONNECTION_BURST_SECONDS,
  CONNECTION_RATE_PER_SOURCE,
  CONNECTIONS_PER_SOURCE,
  defaultMaxConnections,
  DRAIN_MS,
  IDLE_TIMEOUT_MS,
  RATE_SOURCES_MAX,
  REQUEST_DEADLINE_MS,
  SETUP_MAX_TOTAL,
  SETUP_TIMEOUT_MS,
} from "./tls_front/limits.ts";
import { passRequests } from "./tls_front/pass_requests.ts";
import { readProxyHeader } from "./tls_front/proxy_header.ts";
import { duplexOf, once } from "./tls_front/streams.ts";

export * from "./tls_front/limits.ts";

/**
 * The header line the front adds to each request after its start line when
 * asked to ({@linkcode FrontOptions.tagRequests}), its value a random token
 * of the connection: the server behind it, on a Unix socket, has no other
 * way to know whose request it is (a Unix socket's peer has no name).
 */
export const FRONT_CLIENT_HEADER = "keybound-front-client";

const encoder = new TextEncoder();

/** 128 random bits, hex: a connection's token, which no client can guess. */
function newToken(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/** First and longest pause of the accept loop after a failed accept (out of descriptors). */
const ACCEPT_PAUSE_MS = [50, 1_000] as const;

/** An accept error that is one queued connection's loss, not a shortage. */
function lostBeforeAccept(err: unknown): boolean {
  return err instanceof Deno.errors.NotConnected ||
    err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted;
}

/** A certificate chain and its key, PEM. */
export interface TlsPair {
  /** Certificate chain, leaf first. */
  cert: string;
  /** Private key of the leaf. */
  key: string;
}

/** Options of {@linkcode startFront}. */
export interface FrontOptions {
  /** Public interface. */
  hostname: string;
  /** Public port (0 picks one). */
  port: number;
  /** Terminate TLS with this certificate; omit to pass plain HTTP through. */
  tls?: TlsPair;
  /**
   * Balancer addresses (IPs, in any spelling `canonicalIp` reads) whose
   * connections must start with a v2 header.
   */
  balancers: ReadonlySet<string>;
  /** Where the real server listens: a Unix socket's path (serve.ts), or a loopback port (tests). */
  target: { path: string } | { hostname: string; port: number };
  /**
   * Whether each request is passed with a {@linkcode FRONT_CLIENT_HEADER}
   * line after its start line, the connection's token: {@linkcode Front.clientOf}
   * gives its client's address (host:port, the PROXY-declared client's
   * behind a balancer).
   */
  tagRequests?: boolean;
  /** Logger. */
  log: Logger;
  /** Overrides {@linkcode SETUP_TIMEOUT_MS} (tests). */
  setupTimeoutMs?: number;
  /** Overrides {@linkcode SETUP_MAX_TOTAL} (tests). */
  setupMax?: { total: number };
  /** Overrides {@linkcode CLOSE_GRACE_MS} (tests). */
  closeGraceMs?: number;
  /** Overrides {@linkcode IDLE_TIMEOUT_MS} (tests). */
  idleTimeoutMs?: number;
  /** Overrides {@linkcode REQUEST_DEADLINE_MS} (tests). */
  requestDeadlineMs?: number;
  /** Overrides {@linkcode ANSWER_GRACE_MS} and {@linkcode ANSWER_MIN_BYTES_PER_S} (tests). */
  answerDeadline?: { graceMs: number; minBytesPerSecond: number };
  /** Connections one source may hold (default {@linkcode CONNECTIONS_PER_SOURCE}). */
  maxConnectionsPerSource?: number;
  /** Connections in all (default {@linkcode defaultMaxConnections}). */
  maxConnections?: number;
  /** New connections one source may open per second (default {@linkcode CONNECTION_RATE_PER_SOURCE}). */
  maxConnectionRatePerSource?: number;
  /**
   * The clock of the connection-rate buckets and of the quiet spell that
   * ends a logged burst, monotonic ms (default `performance.now`; tests).
   */
  clock?: () => number;
  /** Told of every connection the front refuses or closes on its own (metrics). */
  onEvent?: (event: FrontEvent) => void;
  /** Told of each failed connect to the server behind the front, with its error (serve.ts heals on it). */
  onUnreachable?: (err: unknown) => void;
}

/** A running front. */
export interface Front {
  /** The public address actually bound. */
  addr: Deno.NetAddr;
  /**
   * The client address of the connection whose token is `token`, until the
   * server has closed its side of it (it has then read, and started
   * handling, every request passed on); undefined for any other string.
   */
  clientOf(token: string): string | undefined;
  /**
   * Calls `fn` once the client of the connection whose token is `token` has
   * gone (its socket closed: no answer can reach it), at once if it has;
   * never for an unknown token. Returns what cancels the call. The server
   * answers a request whose client has gone at once (serve.ts), so that it
   * closes its side of the connection then, not when a slow handler ends
   * (review-front N1).
   */
  onClientGone(token: string, fn: () => void): () => void;
  /**
   * Keeps the slot of the connection whose token is `token` (of its
   * source's cap and of the total) until the returned function is called,
   * also once its client and the server's side are gone: serve.ts keeps it
   * for a request still being handled when its client has gone, so that
   * the work a source leaves behind counts against its cap as its
   * connection did. A no-op for an unknown token.
   */
  keepSlot(token: string): () => void;
  /**
   * Serves a new certificate to every connection accepted from now on;
   * connections already open keep theirs. Throws (and keeps the old one)
   * if the pair does not parse or the key is not the certificate's.
   */
  setTls(pair: TlsPair): void;
  /** Stops accepting; open connections go on. */
  stopAccepting(): void;
  /**
   * Once the server has closed its side of every connection: drops those
   * still being set up, lets the others flush what the server last wrote
   * (at most {@linkcode DRAIN_MS}), and closes what remains.
   */
  drain(): Promise<void>;
}

/**
 * A secure context for `pair`, after checking what `node:tls` in Deno does
 * not check when it builds one: that the certificate parses and the key is
 * its key (a mismatch would otherwise surface as every handshake failing).
 */
function secureContextOf(pair: TlsPair): tls.SecureContext {
  let matches: boolean;
  try {
    matches = new X509Certificate(pair.cert).checkPrivateKey(createPrivateKey(pair.key));
  } catch (err) {
    throw new ConfigError(`TLS certificate or key does not parse: ${(err as Error).message}`);
  }
  if (!matches) throw new ConfigError("the TLS key is not the certificate's key");
  return tls.createSecureContext({ cert: pair.cert, key: pair.key });
}

/** A connection passed on with a token (tagRequests). */
interface Tagged {
  /** Its client's address. */
  client: string;
  /** Whether the client's socket has closed. */
  gone: boolean;
  /** Told when it closes ({@linkcode Front.onClientGone}); made on first use. */
  waiting: Set<() => void> | undefined;
  /** {@linkcode Front.keepSlot} for this connection. */
  keep(): () => void;
}

/** Marks `entry`'s client gone and tells those waiting for it. */
function leave(entry: Tagged): void {
  entry.gone = true;
  const waiting = entry.waiting;
  entry.waiting = undefined;
  if (waiting) { for (const fn of waiting) fn(); }
}

/** Starts the front; resolves once it listens (rejects if it cannot bind). */
// deno-lint-ignore require-await -- async: a failure to bind or a bad pair is a rejection
export async function startFront(o: FrontOptions): Promise<Front> {
  let context = o.tls ? secureContextOf(o.tls) : undefined;
  // Compared with peers in canonicalIp's spelling: on a dual-stack listener
  // ([::]) an IPv4 balancer connects as ::ffff:a.b.c.d.
  const balancers = new Set([...o.balancers].map(canonicalIp));
  const open = new Set<Duplex>();
  /** Each open connection's token → its client (tagRequests). */
  const clients = new Map<string, Tagged>();
  const report = o.onEvent ?? (() => {});
  /**
   * Accepted connections not yet connected to the server (header,
   * handshake), per peer source (as rate limits count them: an IPv4
   * address, an IPv6 /64), so that the total cap takes from the largest.
   */
  const settingUp = new SourceSlots<Duplex>();
  const maxTotal = o.setupMax?.total ?? SETUP_MAX_TOTAL;
  /**
   * Every connection the front holds, by client source (the PROXY-declared
   * client's once its header is read), until its socket and its loopback
   * connection have both closed: a client gone while the server still
   * handles its request leaves that connection's 2 descriptors (and the
   * server's work) behind, which counted against no cap when the slot went
   * with the client's socket (review-front N1: with a handler waiting on
   * storage, a source resetting its connections held about its connection
   * rate × the handler's time × 2 descriptors beyond its cap).
   */
  const held = new SourceSlots<Duplex>();
  /** Connections from a balancer whose header (and so source) is not read yet. */
  let awaitingHeader = 0;
  const maxHeld = o.maxConnections ?? defaultMaxConnections(undefined, balancers.size > 0);
  /** Counted apart from `held`, in the descriptor fit (review3 N2). */
  const maxAwaiting = Math.min(maxHeld, awaitingHeaderMax());
  const maxHeldPerSource = o.maxConnectionsPerSource ?? CONNECTIONS_PER_SOURCE;
  /**
   * How to close each connection, by its accepted socket: all of its parts,
   * since destroying the accepted socket leaves a TLS socket over it (and the
   * loopback connection) open.
   */
  const cutOf = new WeakMap<Duplex, () => void>();
  /** Closes the oldest connection of the source that holds the most slots of `slots`. */
  const evictFrom = (slots: SourceSlots<Duplex>): string | undefined => {
    const oldest = slots.oldestOfLargest();
    if (!oldest) return undefined;
    slots.delete(oldest.item);
    cutOf.get(oldest.item)!();
    return oldest.source;
  };
  /**
   * Makes a slot for one more connection among those held: at the total cap
   * the oldest connection of the source holding the most is closed.
   */
  const makeRoom = () => {
    if (held.size < maxHeld) {
      evictedHeld.over();
      return;
    }
    const from = evictFrom(held)!;
    report("evicted_total");
    evictedHeld.note(from);
  };
  const track = (s: Duplex) => {
    open.add(s);
    s.once("close", () => open.delete(s));
    // An error always ends in close; without a listener it would be thrown.
    s.on("error", () => {});
  };

  const ratePerSource = o.maxConnectionRatePerSource ?? CONNECTION_RATE_PER_SOURCE;
  const clock = o.clock ?? (() => performance.now());
  const rates = new TokenBuckets({
    perSecond: ratePerSource,
    burst: ratePerSource * CONNECTION_BURST_SECONDS,
    maxSources: RATE_SOURCES_MAX,
  });
  /**
   * Takes a token of `source`'s connection rate, or reports the refusal:
   * asked after the source's cap (a connection refused for it costs no
   * handshake, and a fleet retrying against the cap must not empty the
   * bucket), before any handshake.
   */
  const underRate = (source: string): boolean => {
    if (rates.take(source, clock()).ok) {
      refusedRate.over();
      return true;
    }
    report("refused_source_rate");
    refusedRate.note(source);
    return false;
  };

  const handle = async (conn: Deno.TcpConn) => {
    // Before the first byte: every write of the answer leaves at once.
    conn.setNoDelay(true);
    const peerHost = canonicalIp(conn.remoteAddr.hostname);
    const peer = formatHostPort(peerHost, conn.remoteAddr.port);
    const fromBalancer = balancers.has(peerHost);
    const peerSource = sourceAddress(peerHost);
    // Refusals first: a connection about to be refused must not cost another its slot.
    if (!fromBalancer && held.count(peerSource) >= maxHeldPerSource) {
      conn.close();
      report("refused_per_source");
      refusedHeld.note(peerSource);
      return;
    }
    if (!fromBalancer && !underRate(peerSource)) {
      conn.close();
      return;
    }
    // A balancer's connection takes its place among those held once its
    // header names the source and that source is under its cap (below):
    // decided here, a connection then refused for its source's cap had
    // first closed another source's oldest (review1 S1). Until then it holds
    // one descriptor, for at most the setup limit, counted apart, within
    // the descriptors the fit sets aside for them (AWAITING_HEADER_MAX).
    if (!fromBalancer) makeRoom();
    else if (awaitingHeader >= maxAwaiting) {
      conn.close();
      report("refused_awaiting_header");
      refusedAwaiting.note(peer);
      return;
    } else refusedAwaiting.over();
    if (settingUp.size >= maxTotal) {
      const from = evictFrom(settingUp);
      if (from !== undefined) {
        report("evicted_setup");
        evicted.note(from);
      }
    } else evicted.over();
    const raw = duplexOf(conn);
    track(raw);
    let inner: Duplex = raw;
    let loopback: net.Socket | undefined;
    const cut = () => {
      loopback?.destroy();
      inner.destroy();
      raw.destroy();
    };
    cutOf.set(raw, cut);
    settingUp.add(raw, peerSource);
    // A balancer's connection is counted apart until its header names the source.
    let awaiting = fromBalancer;
    if (awaiting) awaitingHeader++;
    else {
      held.add(raw, peerSource);
      refusedHeld.over();
    }
    const headerDone = () => {
      if (awaiting) awaitingHeader--;
      awaiting = false;
    };
    /** Whether the client's socket has closed. */
    let clientClosed = false;
    /** The loopback connection while it is open (it holds the slot too). */
    let loopbackOpen = false;
    /** Requests the server still handles after the client went ({@linkcode Front.keepSlot}). */
    let working = 0;
    /** The connection's token and client, once it is passed on (tagRequests). */
    let tagged: Tagged | undefined;
    /** Frees the connection's slot once nothing of it is left. */
    const release = () => {
      if (clientClosed && !loopbackOpen && working === 0) held.delete(raw);
    };
    raw.once("close", () => {
      clientClosed = true;
      headerDone();
      release();
      if (tagged) leave(tagged);
    });
    const setUp = () => settingUp.delete(raw);
    const timer = setTimeout(() => {
      report("setup_timeout");
      cut();
    }, o.setupTimeoutMs ?? SETUP_TIMEOUT_MS);
    let stage = "PROXY protocol header";
    // A peer that ends its side before its header or handshake is done will
    // never finish them: its slots (in setup, of its source) are freed now, not
    // at the timer. (After the handshake its end may follow its request.)
    raw.once("end", () => {
      if (settingUp.has(raw) && stage !== "connection to the server") raw.destroy();
    });
    try {
      const client = fromBalancer ? await readProxyHeader(raw, peer) : peer;
      if (fromBalancer) {
        headerDone();
        const source = sourceAddress(client);
        // Destroyed already (setup timer, eviction): its close frees nothing more.
        if (raw.destroyed) throw new Error("closed after its PROXY protocol header");
        // Closed before TLS: the ClientHello is never read.
        const refuse = () => {
          clearTimeout(timer);
          setUp();
          raw.destroy();
        };
        if (held.count(source) >= maxHeldPerSource) {
          refuse();
          report("refused_per_source");
          refusedHeld.note(source);
          return;
        }
        if (!underRate(source)) return refuse();
        makeRoom();
        held.add(raw, source);
        refusedHeld.over();
        // Its handshake counts for its client from now on: at the setup
        // total the client holding the most in setup loses its oldest, not
        // whichever balanced client came first (review3 N3).
        settingUp.delete(raw);
        settingUp.add(raw, source);
      }
      if (context) {
        stage = "TLS handshake";
        inner = new tls.TLSSocket(raw, {
          isServer: true,
          secureContext: context,
          ALPNProtocols: ["http/1.1"],
        });
        track(inner);
        await once(inner, "secure");
        // Until passRequests holds each request to its answer, no more of
        // the client is read: the loopback connect takes a while when the
        // process is busy, and a flood sent right after the handshake was
        // read whole in the meantime (review3 M1: 8 connections, 4 read
        // whole, +357 MB).
        raw.hold(true);
      }
      clearTimeout(timer);
      stage = "connection to the server";
      /** Whether the loopback connection has connected (then it is never tried again). */
      let connected = false;
      let retried = false;
      /**
       * A loopback connection to where the server listens now. One that
       * fails to connect because the server's socket was gone, and whose
       * failure moved the server (serve.ts heals it, synchronously, in
       * onUnreachable), is tried once more at the new path: the connection
       * that found the socket gone was dropped before, its client getting a
       * close after its handshake (review-ff N5). Only before anything was
       * written to it (no byte, no FIN: passRequests starts after the
       * connect) and while the client is there; the client's listeners
       * below, attached before the first connect (review6 M4), act on
       * whichever attempt is current.
       */
      const connect = (): net.Socket => {
        const to = "path" in o.target
          ? { path: o.target.path }
          : { host: o.target.hostname, port: o.target.port };
        const s = loopback = net.connect(to);
        if (!("path" in to)) s.setNoDelay(true);
        track(s);
        loopbackOpen = true;
        // Before once()'s listener (below): the retry is in place before
        // this attempt's close, which then finds itself replaced.
        s.once("error", (err) => {
          if (connected) return;
          o.onUnreachable?.(err);
          const moved = "path" in to && "path" in o.target && o.target.path !== to.path;
          if (!moved || retried || serverClosed || clientClosed || inner.destroyed) return;
          if (s.writableEnded) return;
          retried = true;
          upstream = connect();
        });
        s.once("close", () => {
          if (s === upstream) closed();
        });
        return s;
      };
      let upstream = connect();
      let grace: ReturnType<typeof setTimeout> | undefined;
      let serverClosed = false;
      // The token is forgotten only when the server has closed its side:
      // by then it has read, and started handling, every request passed on.
      // Forgetting the client when it went away instead had a client that
      // sends its request and closes at once handled under no address.
      const token = o.tagRequests ? newToken() : undefined;
      if (token) {
        tagged = {
          client,
          gone: clientClosed,
          waiting: undefined,
          keep() {
            working++;
            let done = false;
            return () => {
              if (done) return;
              done = true;
              working--;
              release();
            };
          },
        };
        clients.set(token, tagged);
      }
      /** The current loopback connection's close (a replaced attempt's is not). */
      const closed = () => {
        loopbackOpen = false;
        release();
        serverClosed = true;
        clearTimeout(grace);
        if (token) clients.delete(token);
        // The server closing a connection (idle keep-alive, shutdown, after
        // a `connection: close` answer) ends the client's once the answer is
        // flushed (end, not destroy).
        inner.end();
        // The pipe paused the client's side when the server's went: read on
        // (discarding) so the client's own close is seen and the socket freed;
        // under TLS its connection was paused too.
        inner.resume();
        raw.hold(false);
        raw.resume();
      };
      // A server that keeps the connection after its client ended or went
      // away is cut CLOSE_GRACE_MS later: no entry (or descriptor) outlives
      // its client for longer.
      const bound = () => {
        if (!serverClosed) {
          grace ??= setTimeout(() => upstream.destroy(), o.closeGraceMs ?? CLOSE_GRACE_MS);
        }
      };
      // A client that ends its side (FIN) while a request is outstanding
      // still gets its answer (HTTP/1.1 allows the half-close): its FIN
      // waits, since the server (Deno.serve) drops an answer whose request
      // side has ended, until its last answer is read (allAnswered below).
      // Pending: see below; while answers are not followed, outstanding: the
      // client's last bytes came after the server's last. Otherwise the FIN
      // is passed on at once.
      let outstanding = false;
      /** Whether bytes of the client's are read but held back (a request waiting for an answer). */
      let holding = () => false;
      /**
       * Whether a request passed on is not answered yet, or one is under
       * way or held (review3 M2: `outstanding` was false for a request held
       * behind an answer, or a body sent before its 100 Continue, and the
       * FIN went on, losing the answer); undefined while answers are not
       * followed.
       */
      let pending = (): boolean | undefined => undefined;
      let clientEnded = false;
      inner.once("end", () => {
        clientEnded = true;
        if (pending() ?? (outstanding || holding())) bound();
        else upstream.end();
      });
      // A client gone for good ends the server's side, not destroys it: what
      // was forwarded is still handled, under the client's address. Listened
      // for before the loopback connect: a client that vanishes right after
      // its handshake closes during it, and unseen, its loopback connection
      // and the server's side stayed open for good (review6 M4).
      // Its answer is then read and discarded: the pipe's unpipe had paused
      // the loopback connection, which so went unread, the server's close
      // unseen, until the grace limit (its 2 descriptors and the grace timer
      // held 10 s after every client reset, outside the caps).
      inner.once("close", () => {
        if (serverClosed) return;
        upstream.end();
        bound();
        upstream.unpipe(inner);
        upstream.resume();
      });
      for (;;) {
        const attempt = upstream;
        try {
          await once(attempt, "connect");
          break;
        } catch (err) {
          // Replaced by its retry: wait for that one.
          if (attempt === upstream) throw err;
        }
      }
      connected = true;
      unreachable.over();
      setUp();
      // Silent both ways for the idle limit: both sides are cut. A timer
      // re-armed for what is left when it fires, not one per chunk.
      const idleMs = o.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
      let lastByte = performance.now();
      let idle: ReturnType<typeof setTimeout> | undefined;
      const checkIdle = () => {
        const left = lastByte + idleMs - performance.now();
        if (left > 0) {
          idle = setTimeout(checkIdle, left);
          return;
        }
        report("idle_timeout");
        upstream.destroy();
        inner.destroy();
      };
      // Also after the server closed: a client that never closes its side
      // would otherwise keep its socket. Not armed for a client that closed
      // during the connect: its close, seen already, would never clear it.
      if (!inner.destroyed) {
        idle = setTimeout(checkIdle, idleMs);
        inner.once("close", () => clearTimeout(idle));
      }
      inner.on("data", () => {
        outstanding = true;
        lastByte = performance.now();
      });
      upstream.on("data", () => {
        outstanding = false;
        lastByte = performance.now();
      });
      const requests = passRequests(inner, raw, upstream, {
        ...(token ? { tag: encoder.encode(`${FRONT_CLIENT_HEADER}: ${token}\r\n`) } : {}),
        deadlineMs: o.requestDeadlineMs ?? REQUEST_DEADLINE_MS,
        late: () => {
          report("request_deadline");
          late.note(sourceAddress(client));
          upstream.destroy();
          inner.destroy();
        },
        requestInTime: () => late.over(),
        answer: answerDeadline,
        slow: () => {
          report("answer_deadline");
          slow.note(sourceAddress(client));
          upstream.destroy();
          inner.destroy();
        },
        answerTaken: () => slow.over(),
        // A client that ended its side after its requests has had every
        // answer: its FIN goes on now, not at the grace limit (review2 N2:
        // a half-closing client waited CLOSE_GRACE_MS for its close).
        allAnswered: () => {
          if (clientEnded && !upstream.writableEnded) upstream.end();
        },
      });
      holding = requests.holding;
      pending = requests.pending;
      // Piped to a closed client, the loopback connection would pause at
      // the first write and go unread again.
      if (!inner.destroyed) upstream.pipe(inner);
    } catch (err) {
      clearTimeout(timer);
      setUp();
      raw.destroy();
      const fields = { peer, error: err instanceof Error ? err.message : String(err) };
      // A failed handshake is what any scanner produces: not worth an operator's look.
      if (stage === "TLS handshake") o.log.debug("TLS handshake failed", fields);
      // (o.onUnreachable was told at the connect's error.)
      else if (stage === "connection to the server") unreachable.note(fields.error);
      else o.log.warn(`dropped a connection at the public front (${stage})`, fields);
    }
  };

  // Throws at once if the address cannot be bound (a rejection of this async function).
  const listener = Deno.listen({ hostname: o.hostname, port: o.port });
  const refusedHeld = burstLog(
    o.log,
    "refused_per_source",
    "refused connections at the public front: a source holds its cap of connections",
    `at most ${maxHeldPerSource} per source`,
    clock,
  );
  const refusedRate = burstLog(
    o.log,
    "refused_source_rate",
    "refused connections at the public front: a source opens connections faster than its rate",
    `at most ${ratePerSource} a second per source, ${
      ratePerSource * CONNECTION_BURST_SECONDS
    } at once`,
    clock,
  );
  const evictedHeld = burstLog(
    o.log,
    "evicted_total",
    "closed the oldest connections of the source holding the most at the public front: " +
      "too many connections in all",
    `at most ${maxHeld} in all`,
    clock,
  );
  const evicted = burstLog(
    o.log,
    "evicted_setup",
    "closed the oldest connections being set up at the public front: too many in all",
    `at most ${maxTotal} in all`,
    clock,
  );
  const refusedAwaiting = burstLog(
    o.log,
    "refused_awaiting_header",
    "refused connections at the public front: a balancer's connections waiting for their " +
      "PROXY header are at their cap",
    `at most ${maxAwaiting} waiting`,
    clock,
  );
  const late = burstLog(
    o.log,
    "request_deadline",
    "closed connections at the public front: a request not whole in time",
    `at most ${
      (o.requestDeadlineMs ?? REQUEST_DEADLINE_MS) / 1000
    } s from a request's first byte to its last`,
    clock,
  );
  const answerDeadline = o.answerDeadline ??
    { graceMs: ANSWER_GRACE_MS, minBytesPerSecond: ANSWER_MIN_BYTES_PER_S };
  const slow = burstLog(
    o.log,
    "answer_deadline",
    "closed connections at the public front: an answer not taken in time",
    `at most ${
      answerDeadline.graceMs / 1000
    } s from an answer's first wait for room in the socket, plus 1 s per ${
      answerDeadline.minBytesPerSecond / 1024
    } KB taken after it`,
    clock,
  );
  // While the server listens again after a descriptor shortage (serve.ts),
  // every connection in the gap fails so: one line per connection was
  // routine (rereview-front N4 of session 8).
  const unreachable = burstLog(
    o.log,
    "server_unreachable",
    "dropped connections at the public front: the server behind it cannot be reached",
    "reached again",
    clock,
  );
  const failed = burstLog(
    o.log,
    "accept_failed",
    "the public front cannot accept connections (out of descriptors?)",
    "accepting again",
    clock,
  );
  let stopped = false;
  const accepting = (async () => {
    let pause: number = ACCEPT_PAUSE_MS[0];
    while (!stopped) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (stopped) return;
        // A queued connection whose peer reset it before the accept: Deno
        // 2.9.6 throws NotConnected (ENOTCONN) for it. It is that one
        // connection's loss, not a shortage: take the next at once. Pausing
        // here let a few dozen resets a second keep the backlog full and the
        // port dark for minutes (review-front M1).
        if (lostBeforeAccept(err)) {
          report("reset_at_accept");
          continue;
        }
        // Out of descriptors (EMFILE, ENFILE) most likely: the connections
        // wait in the backlog; pause, growing, and try again.
        report("accept_failed");
        failed.note(err instanceof Error ? err.message : String(err));
        await new Promise((r) => setTimeout(r, pause));
        pause = Math.min(pause * 2, ACCEPT_PAUSE_MS[1]);
        continue;
      }
      pause = ACCEPT_PAUSE_MS[0];
      failed.over();
      // A client may end its side after its request (HTTP/1.1 allows it)
      // and still read the answer: the stream is half-open (Duplex's default).
      void handle(conn);
    }
  })();
  const bound = listener.addr;

  return {
    addr: bound,
    clientOf: (token) => clients.get(token)?.client,
    keepSlot: (token) => clients.get(token)?.keep() ?? (() => {}),
    onClientGone(token, fn) {
      const entry = clients.get(token);
      if (!entry) return () => {};
      if (entry.gone) {
        fn();
        return () => {};
      }
      const waiting = entry.waiting ??= new Set();
      waiting.add(fn);
      return () => waiting.delete(fn);
    },
    setTls(pair) {
      if (!context) throw new Error("setTls: this front passes plain HTTP");
      context = secureContextOf(pair);
    },
    stopAccepting() {
      if (stopped) return;
      stopped = true;
      listener.close();
    },
    async drain() {
      await accepting;
      for (const s of [...settingUp.items()]) s.destroy();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all([...open].map((s) => new Promise((r) => s.once("close", r)))),
        new Promise((r) => timer = setTimeout(r, DRAIN_MS)),
      ]);
      clearTimeout(timer);
      for (const s of open) s.destroy();
    },
  };
}
