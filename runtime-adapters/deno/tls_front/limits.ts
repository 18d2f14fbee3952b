/**
 * The public front's limits: how long a connection may take to be set up, to
 * send a request, to take an answer, to stay silent, and how many
 * connections one source and all sources may hold (with the default derived
 * from the process's descriptor limit). Why each value is what it is:
 * docs/operations.md and docs/security.md.
 *
 * @module
 */

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

/**
 * New connections one source (as for {@linkcode CONNECTIONS_PER_SOURCE})
 * may open per second on average, and {@linkcode CONNECTION_BURST_SECONDS}
 * times that at once; over it a new connection is closed before its TLS
 * handshake. What it bounds is one address's share of the front's thread:
 * a handshake costs 0.3–0.6 ms of CPU, so one address opening handshakes
 * without end took all of it (~1,700–3,300 a second); at 500 it takes at
 * most 15–30%. Why 500 does not trip a NAT'd fleet: 10,000 bots behind one
 * address starting at once open one connection each (Keybound's clients
 * keep one pooled connection), the per-source cap lets 512 of them in at a
 * time, and the service answers 100–280 joins a second per process
 * (docs/benchmarks.md), so such a fleet needs 35–100 s however it arrives;
 * the bucket would let its 10,000 connections in within 18 s (1,000 at
 * once, then 500 a second). Connections refused for the source's cap take
 * no token: they cost no handshake, and a fleet retrying against the cap
 * must not empty the bucket. `keybound auth start
 * --max-connection-rate-per-source` sets it.
 */
export const CONNECTION_RATE_PER_SOURCE = 500;

/** A source may open this many seconds' worth of its connection rate at once. */
export const CONNECTION_BURST_SECONDS = 2;

/**
 * Sources whose connection rate is tracked at once (~100 bytes each; the
 * least recently seen are forgotten beyond, and start again with a full
 * bucket): the set is the peers' to choose (an IPv6 /48 is 65,536 sources).
 * Forgetting lets no single address past its rate: its own bucket stays
 * the most recently used while it floods; only an attacker with more
 * addresses than this gets fresh buckets, and such a one is many sources
 * whatever is tracked.
 */
export const RATE_SOURCES_MAX = 10_000;

/**
 * Descriptors an established connection holds: the client's socket, both
 * ends of the loopback one (a connection whose client has gone keeps its
 * slot, with the last 2, until the server closes its side: review-front N1).
 */
const DESCRIPTORS_PER_CONNECTION = 3;
/** Descriptors kept for the rest of the process (storage, files, the diagnostics listener, Deno). */
const DESCRIPTOR_RESERVE = 128;

/**
 * Connections from a balancer waiting for their PROXY header (one
 * descriptor each) at most, and at most an eighth of the descriptor limit;
 * beyond, a new one from a balancer is closed at its accept. They are
 * connections in setup, so {@linkcode SETUP_MAX_TOTAL} bounded them already;
 * what is new is that they are counted out of the descriptor limit apart
 * from the connections held when balancers are configured
 * ({@linkcode defaultMaxConnections}): before, they came on top of it, and at
 * the default cap the process ran out of descriptors (review3 N2: under a
 * limit of 256, 64 connections held and 64 waiting failed accepts and the
 * process's own file opens). Not smaller: a balancer sends its header with
 * the connection, but a burst of a thousand balanced connections at once has
 * hundreds accepted before their first read (measured: 128 refused 615 of
 * 1,000).
 */
export const AWAITING_HEADER_MAX = SETUP_MAX_TOTAL;

/** How many balancer connections may wait for their PROXY header under the descriptor limit `nofile`. */
export function awaitingHeaderMax(nofile = descriptorLimit()): number {
  return nofile === undefined
    ? AWAITING_HEADER_MAX
    : Math.max(1, Math.min(AWAITING_HEADER_MAX, Math.floor(nofile / 8)));
}

/**
 * {@linkcode CONNECTIONS_MAX}, or fewer if the process's descriptor limit
 * (its soft RLIMIT_NOFILE, read from /proc/self/limits; `nofile` in tests)
 * cannot hold that many connections, the balancer connections waiting for
 * their header if `balanced` ({@linkcode awaitingHeaderMax}) and a reserve
 * for everything else: the front then refuses or evicts before an accept, a
 * storage connection or the loopback server's accept can fail for want of
 * a descriptor.
 */
export function defaultMaxConnections(nofile = descriptorLimit(), balanced = false): number {
  return Math.min(CONNECTIONS_MAX, fitOf(nofile, balanced) ?? CONNECTIONS_MAX);
}

/**
 * The most connections the process's descriptor limit holds (3 each, the
 * waiting balancer connections if `balanced`, and the reserve for
 * everything else), if the system says: an explicit `--max-connections`
 * above it is refused at start (docs/operations.md).
 */
export function connectionsFit(nofile = descriptorLimit(), balanced = false): number | undefined {
  return fitOf(nofile, balanced);
}

function fitOf(nofile: number | undefined, balanced: boolean): number | undefined {
  if (nofile === undefined) return undefined;
  const reserve = Math.min(DESCRIPTOR_RESERVE, Math.floor(nofile / 4));
  const waiting = balanced ? awaitingHeaderMax(nofile) : 0;
  return Math.max(1, Math.floor((nofile - reserve - waiting) / DESCRIPTORS_PER_CONNECTION));
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

/**
 * Time a client has to take an answer (to let the front hand it wholly to
 * its socket): {@linkcode ANSWER_GRACE_MS} from the first write of it that
 * had to wait for room in the socket, plus 1 s per
 * {@linkcode ANSWER_MIN_BYTES_PER_S} bytes the socket took after that, so a
 * client must drain at that average rate once the grace is spent. Only
 * bytes taken once the socket's buffer was full count: they left it because
 * the client's side took them. Counting every byte the socket accepted gave
 * a client that read nothing the kernel's send buffer (up to 4 MB,
 * tcp_wmem's maximum) as progress: 30 s + 3.9 MB / 8 KB/s, ~8 minutes, so
 * the idle limit (60 s) cut it first, and a trickling reader lasted 8–10
 * minutes (review-front S3). Before the deadline, a client that read its
 * answer a little at a time held the connection, and the answer in the
 * front and server, for as long as it liked (each byte moved reset the idle
 * limit). An answer the socket buffers take whole never waits and is taken
 * at once, whatever the client reads: the limit matters only for answers
 * larger than those buffers (a page of up to 1,000 listed resources, ~1 MB),
 * and 64 kbit/s, a very slow link, takes such a page in ~2 minutes, well
 * inside 30 s plus 1 s per 8 KB. The price: progress is seen only when the
 * kernel lets the front write again, which Linux does once a third of the
 * send buffer is free, so a reader must free that third within the grace
 * (for loopback's 4 MB, ~46 KB/s; a slow path's buffer stays small). The
 * clock assumes the server writes its answer at once (no route streams, as
 * for the idle limit). Not configurable, like the request deadline.
 */
export const ANSWER_GRACE_MS = 30_000;

/** The average rate in bytes per second a client must take an answer at, after the grace. */
export const ANSWER_MIN_BYTES_PER_S = 8 * 1024;

/** Longest wait at shutdown for connections to flush the server's last answers. */
export const DRAIN_MS = 2_000;
