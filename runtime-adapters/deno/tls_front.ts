/**
 * The auth service's public listener whenever it serves TLS or reads PROXY
 * protocol v2 headers: it accepts the connection, reads and strips the PROXY
 * header (mandatory from a configured balancer address, never read from
 * anyone else), terminates TLS, and passes the plaintext to the real server,
 * `Deno.serve` on a private loopback port. The server learns the client's
 * address by the loopback port the front connected from.
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
 * `Deno.listen` and handed to `node:tls` as streams ({@linkcode duplexOf}):
 * it survives a moment without descriptors, which `node:net`'s server does
 * not. What one source, and all of them, can hold is capped
 * ({@linkcode CONNECTIONS_PER_SOURCE}, {@linkcode CONNECTIONS_MAX}); what the
 * front refuses or closes on its own is reported for the metrics
 * (src/server/metrics.ts names them).
 *
 * @module
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import net from "node:net";
import { Duplex } from "node:stream";
import tls from "node:tls";
import { ConfigError } from "../../src/errors.ts";
import { parseProxyV2, PROXY_V2_MAX_BYTES } from "../../src/server/proxy_protocol.ts";
import type { FrontEvent } from "../../src/server/metrics.ts";
import { sourceAddress } from "../../src/server/rate_limit/source.ts";
import { Http1Framing } from "../../src/server/rate_limit/http1_framing.ts";
import { SourceSlots } from "../../src/server/rate_limit/source_slots.ts";
import { concatBytes } from "../../src/util/encoding.ts";
import { canonicalIp, formatHostPort } from "../../src/util/host_port.ts";
import type { Logger } from "../../src/util/log.ts";

/**
 * Longest time from accepting a connection to handing it to the server
 * (the PROXY header and the TLS handshake): an unauthenticated peer holds a
 * socket and a little memory for at most this long before it sends a request.
 */
export const SETUP_TIMEOUT_MS = 10_000;

/**
 * Longest time the server may keep a connection open after its client ended
 * or went away (to handle and answer what was already forwarded).
 */
export const CLOSE_GRACE_MS = 10_000;

/**
 * Longest time a connection handed to the server may pass no byte either
 * way: the server (Deno.serve) has no header or idle timeout of its own, so
 * a client that goes silent after its handshake, or mid-header, would hold 3
 * descriptors of the process for good. No route streams or long-polls; a
 * handler silent for this long is cut too. Keybound's own clients close an
 * idle pooled connection after half this (CLIENT_POOL_IDLE_MS in
 * ./exclusive_trust.ts), so they never reuse one just as it is cut.
 */
export const IDLE_TIMEOUT_MS = 60_000;

/**
 * Connections being set up (PROXY header, TLS handshake) at once, in all,
 * so that peers cannot hold the descriptors and handshake memory of the
 * process. Over it, the oldest connection in setup of the source holding the
 * most is closed and the new one set up: refusing the new one let 17 sources
 * holding 64 idle connections each lock every other client out (review6 M3);
 * a source can only lose its own slots. One source's connections in setup
 * count against its cap of connections ({@linkcode CONNECTIONS_PER_SOURCE}),
 * with no smaller cap of their own: 64 refused a NAT'd fleet starting at
 * once (hundreds of handshakes from one address; the cap of 512 is sized for
 * them) and bounded no source's handshake CPU (64 handshakes in flight
 * already keep the front's thread busy); what it bounded, how many of one
 * source's handshakes another's waits behind, is ~0.2 s at 512
 * (docs/operations.md).
 */
export const SETUP_MAX_TOTAL = 1024;

/**
 * Connections one source may hold at once, in setup or established (the
 * source is the client a balancer's PROXY header declares, never the
 * balancer): over it a new connection from the source is closed before its
 * TLS handshake. A fleet behind one NAT address without a balancer holds one
 * connection per bot while it talks to the service (Keybound's clients close
 * an idle pooled connection after 30 s); 512 leaves room for a few thousand
 * bots renewing through one address at once (docs/operations.md), and
 * bounds one source to about 512 × 70 KB of the process's memory.
 * `keybound auth start --max-connections-per-source` sets it.
 */
export const CONNECTIONS_PER_SOURCE = 512;

/**
 * Connections the front holds in all, unless the descriptor limit allows
 * fewer ({@linkcode defaultMaxConnections}): an idle established connection
 * costs the process ~70 KB (23 KB of it on the V8 heap, which the auth
 * service caps at 256 MB) and 3 descriptors. At the cap a new connection
 * closes the oldest of the source holding the most, as in setup.
 * `keybound auth start --max-connections` sets it.
 */
export const CONNECTIONS_MAX = 4096;

/** Descriptors an established connection holds: the client's socket, both ends of the loopback one. */
const DESCRIPTORS_PER_CONNECTION = 3;
/** Descriptors kept for the rest of the process (storage, files, the diagnostics listener, Deno). */
const DESCRIPTOR_RESERVE = 128;

/**
 * {@linkcode CONNECTIONS_MAX}, or fewer if the process's descriptor limit
 * (its soft RLIMIT_NOFILE, read from /proc/self/limits; `nofile` in tests)
 * cannot hold that many connections and a reserve for everything else: the
 * front then refuses or evicts before an accept, a storage connection or the
 * loopback server's accept can fail for want of a descriptor.
 */
export function defaultMaxConnections(nofile = descriptorLimit()): number {
  return Math.min(CONNECTIONS_MAX, fitOf(nofile) ?? CONNECTIONS_MAX);
}

/**
 * The most connections the process's descriptor limit holds (3 each, and
 * the reserve for everything else), if the system says: an explicit
 * `--max-connections` above it is refused at start (docs/operations.md).
 */
export function connectionsFit(nofile = descriptorLimit()): number | undefined {
  return fitOf(nofile);
}

function fitOf(nofile: number | undefined): number | undefined {
  if (nofile === undefined) return undefined;
  const reserve = Math.min(DESCRIPTOR_RESERVE, Math.floor(nofile / 4));
  return Math.max(1, Math.floor((nofile - reserve) / DESCRIPTORS_PER_CONNECTION));
}

/** The soft descriptor limit of this process, if the system says (Linux). */
function descriptorLimit(): number | undefined {
  try {
    const line = /^Max open files\s+(\d+|unlimited)/m.exec(
      Deno.readTextFileSync("/proc/self/limits"),
    );
    return line && line[1] !== "unlimited" ? Number(line[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Longest time from a request's first byte to its last (header section and
 * body): a client trickling its request a byte at a time, each byte
 * resetting the idle limit, held a connection and the server's buffers for
 * good. Every Keybound request fits in ~70 KB (bodies are capped at 64 KB),
 * which takes 10 s only below ~56 kbit/s; the clock stops while the server
 * is not reading. Not configurable: no client of the service needs longer.
 */
export const REQUEST_DEADLINE_MS = 10_000;

/** First and longest pause of the accept loop after a failed accept (out of descriptors). */
const ACCEPT_PAUSE_MS = [50, 1_000] as const;

/** A burst of refusals or failed accepts is over after this long without one. */
const BURST_QUIET_MS = 5_000;

/** Longest wait at shutdown for connections to flush the server's last answers. */
export const DRAIN_MS = 2_000;

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
  /** Where the real server listens (loopback). */
  target: { hostname: string; port: number };
  /** Logger. */
  log: Logger;
  /** Overrides {@linkcode SETUP_TIMEOUT_MS} (tests). */
  setupTimeoutMs?: number;
  /** Overrides {@linkcode SETUP_MAX_TOTAL} (tests). */
  setupMax?: { total: number };
  /** Overrides {@linkcode IDLE_TIMEOUT_MS} (tests). */
  idleTimeoutMs?: number;
  /** Overrides {@linkcode REQUEST_DEADLINE_MS} (tests). */
  requestDeadlineMs?: number;
  /** Connections one source may hold (default {@linkcode CONNECTIONS_PER_SOURCE}). */
  maxConnectionsPerSource?: number;
  /** Connections in all (default {@linkcode defaultMaxConnections}). */
  maxConnections?: number;
  /** Told of every connection the front refuses or closes on its own (metrics). */
  onEvent?: (event: FrontEvent) => void;
}

/** A running front. */
export interface Front {
  /** The public address actually bound. */
  addr: Deno.NetAddr;
  /** The client address for a connection the server saw from `peer`, if it came through here. */
  clientAddress(peer: Deno.NetAddr): string | undefined;
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

/**
 * Reads exactly `n` bytes from `sock` and no more, so that what follows
 * (a TLS ClientHello) stays in the socket for the next reader.
 */
function readExactly(sock: Duplex, n: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const done = () => {
      sock.off("readable", attempt);
      sock.off("end", closed);
      sock.off("close", closed);
      sock.off("error", reject);
    };
    const closed = () => {
      done();
      reject(new Error("closed before a whole PROXY protocol header"));
    };
    function attempt() {
      const chunk: Uint8Array | null = sock.read(n);
      if (chunk === null) return;
      done();
      // At the end of the stream read() hands back what is left, which may be less.
      if (chunk.length < n) reject(new Error("closed before a whole PROXY protocol header"));
      else resolve(chunk);
    }
    sock.on("readable", attempt);
    sock.on("end", closed);
    sock.on("close", closed);
    sock.on("error", reject);
    attempt();
  });
}

/** The client a balancer's header names (its own address for a LOCAL header, a health check). */
async function readProxyHeader(sock: Duplex, balancer: string): Promise<string> {
  const fixed = await readExactly(sock, 16);
  // Throws on anything that is not a v2 header; null means "the rest follows".
  const short = parseProxyV2(fixed);
  const length = short?.length ?? 16 + ((fixed[14] << 8) | fixed[15]);
  if (length > PROXY_V2_MAX_BYTES) throw new Error("PROXY protocol header too long");
  const header = short ??
    parseProxyV2(new Uint8Array([...fixed, ...await readExactly(sock, length - 16)]));
  if (!header) throw new Error("incomplete PROXY protocol header");
  return header.command === "proxy"
    ? formatHostPort(canonicalIp(header.source.host), header.source.port)
    : balancer;
}

function once(emitter: Duplex, event: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = () => {
      emitter.off("error", fail);
      emitter.off("close", gone);
      resolve();
    };
    const fail = (err: Error) => {
      emitter.off(event, ok);
      emitter.off("close", gone);
      reject(err);
    };
    const gone = () => fail(new Error(`closed before ${event}`));
    emitter.once(event, ok);
    emitter.once("error", fail);
    emitter.once("close", gone);
  });
}

/**
 * `conn` as a node stream, for `node:tls` and pipes. Accepting with
 * `Deno.listen` rather than `node:net`'s server: in Deno 2.9.6 the latter
 * stops accepting for good, silently, after one accept fails for want of
 * descriptors (review6 M2). Reads and writes go straight to the connection
 * (a web-stream bridge, `Duplex.fromWeb`, cost ~65 µs more per TLS
 * request/answer exchange than node:net, this ~25 µs). While `hold(true)`,
 * no read of the connection is issued, whoever asks: Deno's `node:tls`
 * socket reads the stream under it whether or not it is paused itself, and
 * its own buffer has no bound (review2 M1, review3 M1).
 */
function duplexOf(conn: Deno.Conn): Duplex & { hold(on: boolean): void } {
  // Held for the connection's life (an idle connection always has a read
  // outstanding): 4 KB rather than a TLS record's 16 KB saves ~15 KB of RSS
  // per connection (2,000 idle ones: +141 MB instead of +175 MB); requests
  // are a few hundred bytes to a few KB, a larger record takes a few reads.
  const buf = new Uint8Array(4096);
  let held = false;
  /** A read was asked for while held: issued on release. */
  let wanted = false;
  const readInto = (stream: Duplex) => {
    // One buffer per connection (a read is never outstanding twice); what
    // is pushed is a copy of what was read, usually a few hundred bytes.
    conn.read(buf).then(
      (n) => stream.push(n === null ? null : buf.slice(0, n)),
      (err) => stream.destroy(err),
    );
  };
  const stream = new Duplex({
    read() {
      if (held) wanted = true;
      else readInto(this);
    },
    write(chunk: Uint8Array, _encoding, done) {
      const rest = (at: number) => {
        // A write may take only part of the chunk.
        if (at === chunk.length) return done();
        conn.write(chunk.subarray(at)).then((n) => rest(at + n), done);
      };
      rest(0);
    },
    final(done) {
      conn.closeWrite().then(() => done(), done);
    },
    destroy(err, done) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
      done(err);
    },
  });
  return Object.assign(stream, {
    hold(on: boolean) {
      held = on;
      if (on || !wanted || stream.destroyed) return;
      wanted = false;
      readInto(stream);
    },
  });
}

/**
 * Passes the client's plaintext (`inner`) to the server (`upstream`) one
 * request at a time: the next request is held, and the client no longer
 * read, until the server has answered the one before (its last answer byte
 * read from the loopback connection). A client that pipelines requests and
 * never reads its answers then has at most one answer in flight between the
 * server and the front, not as many as the loopback's kernel buffers and the
 * server's write buffer hold (review6 S2). Normal clients do not pipeline;
 * a pipelining one waits a loopback round trip more per request, which the
 * server (one request at a time per connection) would make it wait anyway.
 * Each request must be whole within `deadlineMs` of its first byte (`late`
 * is called otherwise); the clock stops while the server is not reading.
 * A request the framing cannot follow is passed on with what was read
 * with it, and then the client is read no more: the connection ends once
 * the server has answered (or refused) it, or at its deadline. Passed
 * through unheld instead, one such request let every later one through as
 * before (review2 S1). An answer the framing cannot follow, or a protocol
 * switch, ends the holding and the deadline.
 */
function passRequests(
  inner: Duplex,
  source: Duplex & { hold(on: boolean): void },
  upstream: net.Socket,
  o: { deadlineMs: number; late: () => void; allAnswered: () => void },
): { holding: () => boolean; pending: () => boolean | undefined } {
  // Over TLS, pausing the TLS socket does not stop it reading its connection
  // (`source`): the records kept coming and piled up inside the TLS layer, so
  // a client that pipelined and never read grew the process without bound
  // (review2 M1: 81 MB sent, +106 MB RSS). Both are paused and resumed
  // together; without TLS they are the same stream.
  const stop = () => {
    inner.pause();
    source.pause();
    source.hold(true);
  };
  /** A request the framing cannot follow was passed on: the client is read no more. */
  let lost = false;
  const go = () => {
    if (lost) return;
    source.hold(false);
    inner.resume();
    source.resume();
  };
  const requests = new Http1Framing("request");
  const answers = new Http1Framing("response", () => requests.method);
  /** Requests begun (passed on in part or whole) and not answered yet. */
  let unanswered = 0;
  /** Bytes read from the client and not passed on yet. */
  let waiting: Uint8Array | undefined;
  /** When the request under way began (its first byte was passed on). */
  let since: number | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = () => {
    timer = undefined;
    if (since === undefined || answers.opaque) return;
    // The server is not reading (it is busy, or its answers wait for the
    // client): the rest of the request may be in the client's socket.
    if (upstream.writableNeedDrain) since = performance.now();
    const left = since + o.deadlineMs - performance.now();
    if (left > 0) timer = setTimeout(check, left);
    else o.late();
  };
  const pass = () => {
    if (upstream.destroyed || upstream.writableEnded) {
      // The server's side is gone: what the client sends now is discarded,
      // and read on so that its close is seen.
      waiting = undefined;
      go();
      return;
    }
    while (waiting?.length) {
      const answered = !requests.inMessage && unanswered > 0 && !answers.opaque;
      if (upstream.writableNeedDrain || answered) {
        stop();
        return;
      }
      const t = requests.take(waiting);
      if (t.began) {
        unanswered++;
        since = performance.now();
        timer ??= setTimeout(check, o.deadlineMs);
      }
      if (requests.opaque) {
        // The server answers or refuses what it is given; nothing after it is read.
        lost = true;
        upstream.write(waiting);
        waiting = undefined;
        stop();
        return;
      }
      if (t.n) upstream.write(waiting.subarray(0, t.n));
      waiting = waiting.subarray(t.n);
      if (t.ended) since = undefined;
    }
    waiting = undefined;
    if (!upstream.writableNeedDrain) go();
  };
  inner.on("data", (chunk: Uint8Array) => {
    waiting = waiting?.length ? concatBytes(waiting, chunk) : chunk;
    pass();
  });
  upstream.on("drain", pass);
  upstream.on("data", (chunk: Uint8Array) => {
    let rest = chunk;
    let answered = false;
    while (rest.length && !answers.opaque) {
      const t = answers.take(rest);
      rest = rest.subarray(t.n);
      if (t.ended && !t.ended.interim) {
        unanswered = Math.max(0, unanswered - 1);
        answered = true;
      }
    }
    // The answer to a request not followed: the connection ends (after this
    // chunk has gone on to the client; the server's close ends the client's).
    if (lost && answered) queueMicrotask(() => upstream.destroy());
    else if (unanswered === 0 || answers.opaque) pass();
    if (answered && unanswered === 0 && !requests.inMessage && !waiting?.length) o.allAnswered();
  });
  inner.once("close", () => clearTimeout(timer));
  // Held since the handshake (startFront): read from now on.
  go();
  return {
    holding: () => !!waiting?.length,
    // Undefined while the answers cannot be followed.
    pending: () =>
      answers.opaque ? undefined : unanswered > 0 || requests.inMessage || !!waiting?.length,
  };
}

/** Starts the front; resolves once it listens (rejects if it cannot bind). */
// deno-lint-ignore require-await -- async: a failure to bind or a bad pair is a rejection
export async function startFront(o: FrontOptions): Promise<Front> {
  let context = o.tls ? secureContextOf(o.tls) : undefined;
  // Compared with peers in canonicalIp's spelling: on a dual-stack listener
  // ([::]) an IPv4 balancer connects as ::ffff:a.b.c.d.
  const balancers = new Set([...o.balancers].map(canonicalIp));
  const clients = new Map<number, string>();
  const open = new Set<Duplex>();
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
   * client's once its header is read), until its socket closes.
   */
  const held = new SourceSlots<Duplex>();
  /** Connections from a balancer whose header (and so source) is not read yet. */
  let awaitingHeader = 0;
  const maxHeld = o.maxConnections ?? defaultMaxConnections();
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
    // A balancer's connection takes its place among those held once its
    // header names the source and that source is under its cap (below):
    // decided here, a connection then refused for its source's cap had
    // first closed another source's oldest (review1 S1). Until then it holds
    // one descriptor, for at most the setup limit, counted apart; as many as
    // the total cap waiting at once is a balancer gone wrong.
    if (!fromBalancer) makeRoom();
    else if (awaitingHeader >= maxHeld) {
      conn.close();
      report("refused_total");
      refusedTotal.note(peer);
      return;
    } else refusedTotal.over();
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
    raw.once("close", () => {
      headerDone();
      held.delete(raw);
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
        if (held.count(source) >= maxHeldPerSource) {
          // Closed before TLS: the ClientHello is never read.
          clearTimeout(timer);
          setUp();
          raw.destroy();
          report("refused_per_source");
          refusedHeld.note(source);
          return;
        }
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
      const upstream = loopback = net.connect({ host: o.target.hostname, port: o.target.port });
      upstream.setNoDelay(true);
      track(upstream);
      let localPort = 0; // 0 until connected
      let grace: ReturnType<typeof setTimeout> | undefined;
      let serverClosed = false;
      // The entry goes only when the server has closed the loopback
      // connection: by then it has read, and started handling, every request
      // the front passed it. Deleting it when the client went away instead
      // let a client that sends its request and closes at once be handled as
      // 127.0.0.1 (its rate-limit bucket, its audit lines).
      upstream.once("close", () => {
        serverClosed = true;
        clearTimeout(grace);
        if (localPort) clients.delete(localPort);
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
      });
      // A server that keeps the connection after its client ended or went
      // away is cut CLOSE_GRACE_MS later: no entry (or descriptor) outlives
      // its client for longer.
      const bound = () => {
        if (!serverClosed) grace ??= setTimeout(() => upstream.destroy(), CLOSE_GRACE_MS);
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
      inner.once("close", () => {
        if (serverClosed) return;
        upstream.end();
        bound();
      });
      await once(upstream, "connect");
      setUp();
      localPort = upstream.localPort!;
      if (!serverClosed) clients.set(localPort, client);
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
      idle = setTimeout(checkIdle, idleMs);
      // Also after the server closed: a client that never closes its side
      // would otherwise keep its socket.
      inner.once("close", () => clearTimeout(idle));
      inner.on("data", () => {
        outstanding = true;
        lastByte = performance.now();
      });
      upstream.on("data", () => {
        outstanding = false;
        lastByte = performance.now();
      });
      const requests = passRequests(inner, raw, upstream, {
        deadlineMs: o.requestDeadlineMs ?? REQUEST_DEADLINE_MS,
        late: () => {
          report("request_deadline");
          late.note(client);
          upstream.destroy();
          inner.destroy();
        },
        // A client that ended its side after its requests has had every
        // answer: its FIN goes on now, not at the grace limit (review2 N2:
        // a half-closing client waited CLOSE_GRACE_MS for its close).
        allAnswered: () => {
          if (clientEnded && !upstream.writableEnded) upstream.end();
        },
      });
      holding = requests.holding;
      pending = requests.pending;
      upstream.pipe(inner);
    } catch (err) {
      clearTimeout(timer);
      setUp();
      raw.destroy();
      const fields = { peer, error: err instanceof Error ? err.message : String(err) };
      // A failed handshake is what any scanner produces: not worth an operator's look.
      if (stage === "TLS handshake") o.log.debug("TLS handshake failed", fields);
      else o.log.warn(`dropped a connection at the public front (${stage})`, fields);
    }
  };

  // Throws at once if the address cannot be bound (a rejection of this async function).
  const listener = Deno.listen({ hostname: o.hostname, port: o.port });
  const refusedHeld = burstLog(
    o.log,
    "refused connections at the public front: a source holds its cap of connections",
    `at most ${maxHeldPerSource} per source`,
  );
  const evictedHeld = burstLog(
    o.log,
    "closed the oldest connections of the source holding the most at the public front: " +
      "too many connections in all",
    `at most ${maxHeld} in all`,
  );
  const evicted = burstLog(
    o.log,
    "closed the oldest connections being set up at the public front: too many in all",
    `at most ${maxTotal} in all`,
  );
  const refusedTotal = burstLog(
    o.log,
    "refused connections at the public front: as many as the total cap waiting for a PROXY header",
    `at most ${maxHeld} in all`,
  );
  const late = burstLog(
    o.log,
    "closed connections at the public front: a request not whole in time",
    `at most ${
      (o.requestDeadlineMs ?? REQUEST_DEADLINE_MS) / 1000
    } s from a request's first byte to its last`,
  );
  const failed = burstLog(
    o.log,
    "the public front cannot accept connections (out of descriptors?)",
    "accepting again",
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
    clientAddress(peer) {
      return peer.hostname === o.target.hostname ? clients.get(peer.port) : undefined;
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

/**
 * A log line for the first of a burst of like events and one when the burst
 * is over, with how many there were: an operator sees the shortage, the log
 * does not fill with one line per attempt.
 */
function burstLog(log: Logger, first: string, over: string) {
  let count = 0;
  let since = 0;
  let last = 0;
  return {
    note(detail: string) {
      last = performance.now();
      if (count++ === 0) {
        since = last;
        log.warn(first, { detail });
      }
    },
    /** Something went right: ends the burst if none happened for BURST_QUIET_MS. */
    over() {
      if (count === 0 || performance.now() - last < BURST_QUIET_MS) return;
      log.info(`${first}: over, ${over}`, { count, ms: performance.now() - since });
      count = 0;
    },
  };
}
