/**
 * The public TCP listener when the auth service sits behind a balancer that
 * sends PROXY protocol v2 (`--proxy-protocol-from`). Deno's HTTP server
 * cannot read bytes before TLS, so this front accepts the connection, reads
 * and strips the header (mandatory from a configured balancer address,
 * never read from anyone else), and passes the remaining bytes untouched to
 * the real server on a private loopback port. The server then learns the
 * client's address by the loopback port the front connected from.
 *
 * @module
 */
import {
  parseProxyV2,
  PROXY_V2_MAX_BYTES,
  type ProxyHeader,
} from "../../src/server/proxy_protocol.ts";
import { formatHostPort } from "../../src/util/host_port.ts";
import type { Logger } from "../../src/util/log.ts";

/** Longest wait for a balancer's header. */
const HEADER_TIMEOUT_MS = 5_000;

/** Options of {@linkcode startProxyFront}. */
export interface ProxyFrontOptions {
  /** Public interface. */
  hostname: string;
  /** Public port (0 picks one). */
  port: number;
  /** Balancer addresses (IPs) whose connections must start with a v2 header. */
  balancers: ReadonlySet<string>;
  /** Where the real server listens (loopback). */
  target: { hostname: string; port: number };
  /** Logger. */
  log: Logger;
}

/** A running front. */
export interface ProxyFront {
  /** The public address actually bound. */
  addr: Deno.NetAddr;
  /** The client address for a connection the server saw from `peer`, if it came through here. */
  clientAddress(peer: Deno.NetAddr): string | undefined;
  /** Stops accepting and closes open connections. */
  close(): Promise<void>;
}

async function readHeader(conn: Deno.Conn): Promise<{ header: ProxyHeader; rest: Uint8Array }> {
  const buf = new Uint8Array(PROXY_V2_MAX_BYTES);
  let have = 0;
  const timer = setTimeout(() => conn.close(), HEADER_TIMEOUT_MS);
  try {
    for (;;) {
      const n = await conn.read(buf.subarray(have));
      if (n === null) throw new Error("closed before a PROXY protocol header");
      have += n;
      const header = parseProxyV2(buf.subarray(0, have));
      if (header) return { header, rest: buf.slice(header.length, have) };
      if (have === buf.length) throw new Error("PROXY protocol header too long");
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Starts the front; resolves once it listens. */
export function startProxyFront(o: ProxyFrontOptions): ProxyFront {
  const listener = Deno.listen({ hostname: o.hostname, port: o.port });
  const clients = new Map<number, string>();
  const open = new Set<Deno.Conn>();

  const handle = async (conn: Deno.Conn) => {
    const peer = conn.remoteAddr as Deno.NetAddr;
    let client = formatHostPort(peer.hostname, peer.port);
    let rest: Uint8Array = new Uint8Array();
    let upstream: Deno.TcpConn | undefined;
    try {
      if (o.balancers.has(peer.hostname)) {
        const r = await readHeader(conn);
        if (r.header.command === "proxy") {
          client = formatHostPort(r.header.source.host, r.header.source.port);
        }
        rest = r.rest;
      }
      upstream = await Deno.connect(o.target);
      open.add(upstream);
      const localPort = (upstream.localAddr as Deno.NetAddr).port;
      clients.set(localPort, client);
      try {
        if (rest.length > 0) await upstream.write(rest);
        await Promise.allSettled([
          conn.readable.pipeTo(upstream.writable),
          upstream.readable.pipeTo(conn.writable),
        ]);
      } finally {
        clients.delete(localPort);
      }
    } catch (err) {
      o.log.warn("dropped a connection at the PROXY protocol front", {
        peer: formatHostPort(peer.hostname, peer.port),
        error: err instanceof Error ? err.message : String(err),
      });
    } finally {
      for (const c of [conn, upstream]) {
        if (!c) continue;
        open.delete(c);
        try {
          c.close();
        } catch { /* already closed by a finished pipe */ }
      }
    }
  };

  let closed = false;
  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (closed) return;
        // A connection reset before it was accepted (or a passing lack of
        // descriptors) must not end the public listener: log, pause, go on.
        o.log.warn("accept failed at the PROXY protocol front; still listening", {
          error: err instanceof Error ? err.message : String(err),
        });
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      open.add(conn);
      handle(conn);
    }
  })();

  return {
    addr: listener.addr as Deno.NetAddr,
    clientAddress(peer) {
      return peer.hostname === o.target.hostname ? clients.get(peer.port) : undefined;
    },
    async close() {
      closed = true;
      listener.close();
      await accepting;
      for (const c of open) {
        try {
          c.close();
        } catch { /* gone */ }
      }
    },
  };
}
