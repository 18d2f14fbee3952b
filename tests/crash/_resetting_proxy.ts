/**
 * A TCP proxy on loopback (plain HTTP/1.1 bytes, relayed as they come) that
 * once lets the server read and answer a join `continue` sent on a reused
 * keep-alive connection, throws that answer away and resets the client's
 * connection — what a balancer failing over or an auth instance dying right
 * after its commit does. The runtime's HTTP client then sends the same
 * request again on a new connection by itself (review5 V1): the server sees
 * the `continue` twice.
 *
 * {@linkcode startHandshakeResettingProxy} instead resets every other new
 * connection as soon as the client's first bytes (a TLS ClientHello) arrive,
 * before relaying anything: what a listener that closes (an instance
 * restarting, a balancer failing over) does to the connections queued on
 * it. Not a byte of a request was written, so the client may send again.
 *
 * @module
 */
import { connect, createServer, type Server, type Socket } from "node:net";

/** A running proxy. */
export interface ResettingProxy {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** Every request line relayed, as `conn=N req#M METHOD PATH`. */
  log: string[];
  /** True once the answer was dropped and the client reset. */
  fired(): boolean;
  /** Stops the proxy and every relayed connection. */
  close(): Promise<void>;
}

const CONTINUE = "POST /v1/join/bound-keypair/continue ";
const REQUEST_LINE = /^(GET|POST|PUT|DELETE|HEAD) (\S+) HTTP\/1\.1$/gm;

/** A loopback TCP server whose sockets `close` destroys: the part both proxies share. */
async function trackedServer(
  onConnection: (client: Socket, id: number, track: (s: Socket) => Socket) => void,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const track = (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {}); // a reset peer is what these proxies are for
    return s;
  };
  const server: Server = createServer((client) =>
    onConnection(track(client), ++connections, track)
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Relays bytes both ways between `client` and a new connection to `upstreamPort`. */
function relay(client: Socket, upstreamPort: number, track: (s: Socket) => Socket): void {
  const upstream = track(connect(upstreamPort, "127.0.0.1"));
  client.pipe(upstream);
  upstream.pipe(client);
  client.on("close", () => upstream.destroy());
  upstream.on("close", () => client.destroy());
}

/** Starts a proxy to `127.0.0.1:upstreamPort`. */
export async function startResettingProxy(upstreamPort: number): Promise<ResettingProxy> {
  const log: string[] = [];
  let fired = false;
  const server = await trackedServer((client, id, track) => {
    const upstream = track(connect(upstreamPort, "127.0.0.1"));
    let requests = 0;
    let holding = false;
    client.on("data", (chunk: Buffer) => {
      const text = chunk.toString("latin1");
      for (const m of text.matchAll(REQUEST_LINE)) {
        requests++;
        log.push(`conn=${id} req#${requests} ${m[1]} ${m[2]}`);
      }
      if (!fired && !holding && requests > 1 && text.includes(CONTINUE)) {
        // A continue on a reused connection: the server gets it, the client never gets the answer.
        holding = true;
        log.push(`conn=${id} holding the answer of this continue`);
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (!holding) {
        client.write(chunk);
        return;
      }
      if (fired) return;
      // The server read the whole request and answered (it committed): reset.
      fired = true;
      log.push(`conn=${id} dropped the answer and reset the client connection`);
      client.resetAndDestroy();
      upstream.destroy();
    });
    client.on("end", () => upstream.end());
    upstream.on("end", () => {
      if (!holding) client.end();
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => {
      if (!holding) client.destroy();
    });
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    log,
    fired: () => fired,
    close: server.close,
  };
}

/** A proxy that resets every other new connection before relaying a byte. */
export interface HandshakeResettingProxy {
  /** `https://127.0.0.1:PORT` (TLS passes through untouched). */
  url: string;
  /** One line per connection: `conn=N reset before relaying` or `conn=N relayed`. */
  log: string[];
  /** Connections reset so far. */
  resets(): number;
  /** Stops the proxy and every relayed connection. */
  close(): Promise<void>;
}

/**
 * Starts a proxy to `127.0.0.1:upstreamPort` that resets connections 1, 3,
 * 5, … once the client's first bytes arrived and relays the others: every
 * new connection a sequential client opens is reset once, and the next one
 * it opens goes through.
 */
export async function startHandshakeResettingProxy(
  upstreamPort: number,
): Promise<HandshakeResettingProxy> {
  const log: string[] = [];
  let resets = 0;
  const server = await trackedServer((client, id, track) => {
    if (id % 2 === 0) {
      log.push(`conn=${id} relayed`);
      relay(client, upstreamPort, track);
      return;
    }
    // After the ClientHello, as a closed listener's queued connection: the client has
    // written its handshake, never a request.
    client.once("data", () => {
      resets++;
      log.push(`conn=${id} reset before relaying`);
      client.resetAndDestroy();
    });
  });
  return {
    url: `https://127.0.0.1:${server.port}`,
    log,
    resets: () => resets,
    close: server.close,
  };
}
