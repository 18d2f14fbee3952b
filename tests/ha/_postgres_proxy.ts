/**
 * A TCP proxy on 127.0.0.1 in front of a PostgreSQL fixture that can turn,
 * for the connections it accepts next, into a server that closes them
 * without a word: right after completing the TLS handshake, or after
 * refusing TLS and reading the start-up message. It counts the connections
 * it accepts, and can lose one answer of the server: the connection cut
 * after PostgreSQL did the work, before the client heard of it.
 *
 * @module
 */
import type { PostgresBackend } from "../../runtime-adapters/deno/postgres/backend.ts";
import { type PostgresServer, startPostgres } from "./_postgres.ts";

/** What the proxy does with a connection it accepts. */
export type ProxyMode =
  | "forward"
  | "close after TLS"
  | "close after refusing TLS"
  /** Accepts and closes at once: a port whose server is gone (a balancer in front of it). */
  | "close at once";

/** A running {@linkcode startPostgresProxy}. */
export interface PostgresProxy extends AsyncDisposable {
  port: number;
  /** Applies to connections accepted from now on. */
  mode: ProxyMode;
  /** Connections accepted so far. */
  readonly connects: number;
  /**
   * The next answer of PostgreSQL that completes a statement, on any
   * forwarded connection, is dropped and that connection closed: the
   * statement ran, its client never hears.
   */
  cutNextAnswer(): void;
  /**
   * As {@linkcode cutNextAnswer}, and with it every forwarded connection is
   * closed and the mode becomes "close at once": PostgreSQL crashing right
   * after a statement ran.
   */
  crashOnNextAnswer(): void;
  /**
   * Closes every client's connection now; PostgreSQL's side closes after
   * (a network cut): a statement it runs goes on until it writes its answer.
   * With "commit pool": only the connections whose start-up message asks
   * for serializable transactions (PostgresBackend's commit pool).
   */
  cutClients(which?: "all" | "commit pool"): void;
  /** Connections closed at once ("close at once") so far. */
  readonly refused: number;
  /** Connections open now, clients' and PostgreSQL's. */
  readonly open: number;
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  for (let got = 0; got < n;) {
    const r = await conn.read(buf.subarray(got));
    if (r === null) throw new Error("closed");
    got += r;
  }
  return buf;
}

/** One length-prefixed start-up packet (SSLRequest or StartupMessage). */
async function readPacket(conn: Deno.Conn): Promise<void> {
  const head = await readExactly(conn, 4);
  await readExactly(conn, new DataView(head.buffer).getUint32(0) - 4);
}

/** Whether `chunk` holds a CommandComplete ('C'): the end of a statement's answer. */
function completes(chunk: Uint8Array): boolean {
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  for (let at = 0; at + 5 <= chunk.length; at += 1 + view.getUint32(at + 1)) {
    if (chunk[at] === 0x43) return true;
  }
  return false;
}

/**
 * Starts the proxy to PostgreSQL on `target`. `tlsDir` holds the
 * `server.crt` and `server.key` it completes TLS handshakes with ("close
 * after TLS" needs it).
 */
export function startPostgresProxy(target: number, tlsDir?: string): PostgresProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  // Completes each handshake, then closes: what a connection closing after TLS reaches.
  const tls = tlsDir
    ? Deno.listenTls({
      hostname: "127.0.0.1",
      port: 0,
      cert: Deno.readTextFileSync(`${tlsDir}/server.crt`),
      key: Deno.readTextFileSync(`${tlsDir}/server.key`),
    })
    : undefined;
  let cut = false;
  let crash = false;
  const conns = new Set<Deno.Conn>();
  /** The accepted connections (clients'), a subset of conns. */
  const clients = new Set<Deno.Conn>();
  /** The clients whose start-up message named serializable: the commit pool's. */
  const serializable = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const track = (conn: Deno.Conn, work: () => Promise<void>) => {
    conns.add(conn);
    clients.add(conn);
    const task = work().catch(() => {}).finally(() => {
      conns.delete(conn);
      clients.delete(conn);
      serializable.delete(conn);
      try {
        conn.close();
      } catch { /* closed */ }
    });
    tasks.add(task);
    task.finally(() => tasks.delete(task));
  };
  const pipe = async (a: Deno.Conn, b: Deno.Conn) => {
    conns.add(b);
    const answers = async () => {
      const w = a.writable.getWriter();
      for await (const chunk of b.readable) {
        if ((cut || crash) && completes(chunk)) {
          if (crash) {
            proxy.mode = "close at once";
            for (const c of conns) {
              try {
                c.close();
              } catch { /* closed */ }
            }
          }
          cut = crash = false;
          return;
        }
        await w.write(chunk);
      }
    };
    // Either way ends the pair; the other direction ends when its connection is closed.
    let startup = 0;
    const requests = a.readable.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, out) {
          // The start-up message is among the first packets (after an SSLRequest, maybe).
          if (startup++ < 3 && new TextDecoder().decode(chunk).includes("serializable")) {
            serializable.add(a);
          }
          out.enqueue(chunk);
        },
      }),
    );
    await Promise.race([
      requests.pipeTo(b.writable).catch(() => {}),
      answers().catch(() => {}),
    ]);
    try {
      b.close();
    } catch { /* closed */ }
    conns.delete(b);
  };
  const proxy = {
    port: (listener.addr as Deno.NetAddr).port,
    mode: "forward" as ProxyMode,
    connects: 0,
    refused: 0,
    get open() {
      return conns.size;
    },
    cutNextAnswer: () => (cut = true),
    crashOnNextAnswer: () => (crash = true),
    cutClients(which = "all") {
      for (const c of which === "all" ? clients : serializable) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      tls?.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await Promise.allSettled([accepting, handshaking, ...tasks]);
    },
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      proxy.connects++;
      const mode = proxy.mode;
      if (mode === "close at once") proxy.refused++;
      track(conn, async () => {
        if (mode === "close at once") return;
        if (mode === "forward") {
          return await pipe(conn, await Deno.connect({ hostname: "127.0.0.1", port: target }));
        }
        await readPacket(conn); // the client's SSLRequest
        if (mode === "close after refusing TLS") {
          await conn.write(new TextEncoder().encode("N"));
          await readPacket(conn); // its StartupMessage
          return;
        }
        if (!tls) throw new Error("close after TLS: the proxy has no certificate");
        await conn.write(new TextEncoder().encode("S"));
        const port = (tls.addr as Deno.NetAddr).port;
        await pipe(conn, await Deno.connect({ hostname: "127.0.0.1", port }));
      });
    }
  })().catch(() => {});
  const handshaking = (async () => {
    for await (const conn of tls ?? []) {
      track(conn, () => conn.handshake().then(() => {}));
    }
  })().catch(() => {});
  return proxy;
}

/** What {@linkcode proxiedBackend} started; disposing ends all three. */
export interface ProxiedBackend extends AsyncDisposable {
  pg: PostgresServer;
  proxy: PostgresProxy;
  /** On database `kb`, through {@linkcode proxy}. */
  backend: PostgresBackend;
}

/** A fresh PostgreSQL with a database `kb`, this proxy in front, and a backend through it. */
export async function proxiedBackend(): Promise<ProxiedBackend> {
  await using stack = new AsyncDisposableStack();
  const pg = stack.use(await startPostgres());
  await pg.createDatabase("kb");
  const proxy = stack.use(startPostgresProxy(pg.port));
  const backend = stack.use(await pg.backend("kb", { port: proxy.port }));
  const all = stack.move();
  return { pg, proxy, backend, [Symbol.asyncDispose]: () => all.disposeAsync() };
}
