/**
 * The public front (runtime-adapters/deno/tls_front.ts) gives back what a
 * connection holds however it ends: a client that finishes its TLS
 * handshake and vanishes at once frees its socket, the loopback connection
 * and the server's side (review6 M4: three descriptors each, kept forever),
 * and a connection silent both ways past the idle limit is closed, both
 * sides (review6 S1: held for good before). When idle connections from
 * several sources fill the cap on connections in setup, a new client from
 * another source is still served: the oldest connection of the source
 * holding the most is closed instead (review6 M3: the newcomer was refused,
 * so 17 addresses locked everyone out); a source at its own cap is refused.
 * A client gone while a slow handler waits has its server side closed at
 * once, and until it is, its connection counts against its source's cap
 * (review-front N1: 2 descriptors per reset, outside every cap, for the
 * handler's whole wait).
 *
 * @module
 */
import net from "node:net";
import tls from "node:tls";
import { assert, assertEquals } from "../_assert.ts";
import { missingTools } from "../_tools.ts";
import { waitUntil } from "../_wait.ts";
import { FRONT_CLIENT_HEADER, startFront } from "../../runtime-adapters/deno/tls_front.ts";
import { formatHostPort } from "../../src/util/host_port.ts";
import { silentLogger } from "../../src/util/log.ts";
import {
  get as getFrom,
  sendThenReset,
  serverPair,
  tlsFrontWith,
  waitingService,
} from "./_front.ts";

const NEEDS_OPENSSL = missingTools("openssl");
// Linux: descriptors counted in /proc/self/fd; sources 127.0.0.2 and up (all of 127/8 is loopback).
const NO_PROC = Deno.build.os === "linux" ? undefined : "reads /proc/self/fd, binds 127.0.0.2";

/** An idle TCP connection to `port` from `from`, once connected. */
function idleFrom(from: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port, localAddress: from }, () => resolve(s));
    s.once("error", reject);
  });
}

/** A TLS GET from 127.0.0.1: the status line, or the error. */
function get(port: number): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    const s = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      s.write("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    });
    s.on("data", (d: Uint8Array) => text += new TextDecoder().decode(d));
    s.on("error", (err: Error) => resolve(`error: ${err.message}`));
    s.on("close", () => resolve(text.split("\r\n")[0]));
  });
}

/**
 * TCP sockets this process holds on `port` (either end, the listener
 * included). `deno test --parallel` runs other test files in this same
 * process, so a count of every descriptor moves with theirs; these are
 * only the front's and its clients'.
 */
function socketsOnPort(port: number): number {
  const held = new Set<string>();
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(Deno.readLinkSync(`/proc/self/fd/${e.name}`));
      if (m) held.add(m[1]);
    } catch { /* closed meanwhile */ }
  }
  let n = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of Deno.readTextFileSync(table).split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const ports = [f[1], f[2]].map((a) => parseInt(a.split(":")[1], 16));
      if (ports.includes(port) && held.has(f[9])) n++;
    }
  }
  return n;
}

Deno.test({
  name: "front: idle connections filling the setup cap close their own oldest, not the newcomer",
  ignore: NEEDS_OPENSSL !== undefined || NO_PROC !== undefined,
  async fn() {
    const { front, stop } = await tlsFrontWith({
      setupMax: { total: 6 },
      maxConnectionsPerSource: 3,
    });
    const idle: net.Socket[] = [];
    let closed = 0;
    try {
      // Accepted in connect order: all six are counted before the client.
      for (const from of ["127.0.0.2", "127.0.0.3"]) {
        for (let i = 0; i < 3; i++) {
          const s = await idleFrom(from, front.addr.port);
          s.on("error", () => {});
          s.on("close", () => closed++);
          idle.push(s);
        }
      }
      // Before the fix: refused at its accept while the six held their slots.
      assertEquals(await get(front.addr.port), "HTTP/1.1 200 OK");
      await waitUntil(() => closed >= 1, "an idle connection closed for the client");
      // A source at its own cap is still refused at the accept.
      const fourth = await idleFrom("127.0.0.3", front.addr.port);
      fourth.on("error", () => {});
      fourth.resume();
      let gone = false;
      fourth.on("close", () => gone = true);
      await waitUntil(() => gone, "the over-cap connection closed");
      assertEquals(closed, 1, "idle connections closed");
    } finally {
      for (const s of idle) s.destroy();
      await stop();
    }
  },
});

/**
 * A client that resets once its request is passed on, before the answer:
 * the server (a raw listener on a Unix socket, as serve.ts's, so that it
 * answers after the front's FIN, which Deno.serve would not) then writes
 * half an answer and closes. The front must read that to its end, see the
 * close and give back the connection's descriptors, and arm no answer
 * clock for it. Before: the pipe's unpipe at the client's close paused the
 * server's side, so its close went unseen until the grace limit (10 s;
 * here 10 min), and its descriptors and the grace timer stayed. A clock
 * armed after the close (rereview-front N3, reachable once the answer is
 * read) is a timer this test's op sanitizer (turned on) reports as leaked:
 * the front's drain does not clear it. The request arrives with its
 * connection's token after its start line.
 */
async function resetBeforeAnswer(tlsPair: { cert: string; key: string } | undefined) {
  const dir = await Deno.makeTempDir({ prefix: "kb-front-" });
  const path = `${dir}/http.sock`;
  const target = Deno.listen({ transport: "unix", path });
  const front = await startFront({
    hostname: "127.0.0.1",
    port: 0,
    ...(tlsPair ? { tls: tlsPair } : {}),
    balancers: new Set(),
    target: { path },
    tagRequests: true,
    log: silentLogger,
    closeGraceMs: 600_000,
  });
  const base = socketsOnPort(front.addr.port);
  const socket = net.connect({ host: "127.0.0.1", port: front.addr.port });
  socket.on("error", () => {});
  let server: Deno.Conn | undefined;
  try {
    const client = tlsPair ? tls.connect({ socket, rejectUnauthorized: false }) : socket;
    client.on("error", () => {});
    await new Promise((r) => client.once(tlsPair ? "secureConnect" : "connect", r));
    client.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    server = await target.accept();
    const buf = new Uint8Array(4096);
    let request = "";
    while (!request.endsWith("\r\n\r\n")) {
      const n = await server.read(buf);
      if (n === null) throw new Error("the front closed before the request");
      request += new TextDecoder().decode(buf.subarray(0, n));
    }
    const lines = request.split("\r\n");
    assertEquals([lines[0], lines[2]], ["GET / HTTP/1.1", "host: x"]);
    const token = lines[1].slice(`${FRONT_CLIENT_HEADER}: `.length);
    assertEquals(front.clientOf(token), formatHostPort("127.0.0.1", socket.localPort!));
    socket.resetAndDestroy();
    // The front passes the client's close on as its FIN.
    while (await server.read(buf) !== null);
    await server.write(
      new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nhalf"),
    );
    server.close();
    server = undefined;
    await waitUntil(() => front.clientOf(token) === undefined, "the token forgotten");
    await waitUntil(
      () => socketsOnPort(front.addr.port) <= base,
      `sockets on the front's port back to ${base}`,
    );
  } finally {
    socket.destroy();
    server?.close();
    front.stopAccepting();
    await front.drain();
    target.close();
    await Deno.remove(dir, { recursive: true });
  }
}

// The op sanitizer is off by default in Deno 2.9.6: on here, it fails the
// test on a timer still armed when it ends.
Deno.test({
  name: "front: a client reset before its answer frees the server's side once the server closes",
  ignore: NO_PROC !== undefined,
  sanitizeOps: true,
  fn: () => resetBeforeAnswer(undefined),
});

Deno.test({
  name:
    "front: a TLS client reset before its answer frees the server's side once the server closes",
  ignore: NEEDS_OPENSSL !== undefined || NO_PROC !== undefined,
  sanitizeOps: true,
  async fn() {
    const { cert, key } = await serverPair();
    await resetBeforeAnswer({ cert, key });
  },
});

Deno.test({
  name:
    "serveService: a request still handled after its client reset keeps its slot of the source's cap (review-front N1)",
  ignore: NEEDS_OPENSSL !== undefined || NO_PROC !== undefined,
  async fn() {
    const { server, entered, release, stop } = await waitingService({
      maxConnectionsPerSource: 4,
    });
    try {
      const passed: boolean[] = [];
      for (let i = 0; i < 12; i++) {
        passed.push(await sendThenReset(server.addr.port, "127.0.0.2", entered));
      }
      // The server let each connection go at its reset, but the work each
      // left counts as its connection did: 4, then refusals. Before: every
      // one was passed on, a source's waiting requests bounded by no cap.
      assertEquals(passed, [...Array(4).fill(true), ...Array(8).fill(false)]);
      assertEquals(entered(), 4);
      release();
      await waitUntil(
        async () => await getFrom("127.0.0.2", server.addr.port) === "HTTP/1.1 200 OK",
        "the source's slots back once the work is done",
        { intervalMs: 50 },
      );
    } finally {
      await stop();
    }
  },
});

Deno.test({
  name: "serveService: shutdown waits for the work of a request whose client has gone",
  ignore: NEEDS_OPENSSL !== undefined || NO_PROC !== undefined,
  async fn() {
    const { server, entered, finished, release, stop } = await waitingService();
    try {
      assert(await sendThenReset(server.addr.port, "127.0.0.2", entered));
      const stopped = server.shutdown().then(() => finished());
      // Time for a shutdown that does not wait to end before the work does.
      await new Promise((r) => setTimeout(r, 300));
      release();
      // Before: Deno.serve had let the request go (its client gone), so its
      // shutdown did not wait, and the process closed its storage under it.
      assertEquals(await stopped, 1, "handlers finished when shutdown resolved");
    } finally {
      await stop();
    }
  },
});

Deno.test({
  name:
    "front: a reset client's connection counts against its source until the server closes its side (review-front N1)",
  ignore: NO_PROC !== undefined,
  sanitizeOps: true,
  async fn() {
    // A server that keeps its side after the client's FIN (Deno.serve does
    // while its handler runs): a raw listener on a Unix socket, as serve.ts's.
    const dir = await Deno.makeTempDir({ prefix: "kb-front-" });
    const path = `${dir}/http.sock`;
    const target = Deno.listen({ transport: "unix", path });
    const events: string[] = [];
    const front = await startFront({
      hostname: "127.0.0.1",
      port: 0,
      balancers: new Set(),
      target: { path },
      log: silentLogger,
      maxConnectionsPerSource: 2,
      closeGraceMs: 600_000,
      onEvent: (e) => events.push(e),
    });
    const accepted: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const conn of target) accepted.push(conn);
    })();
    /** A plain connection from 127.0.0.2 that sends a request; whether the server got it. */
    const attempt = async (reset: boolean) => {
      const socket = await idleFrom("127.0.0.2", front.addr.port);
      socket.on("error", () => {});
      let closed = false;
      socket.on("close", () => closed = true);
      const before = accepted.length;
      socket.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
      await waitUntil(() => accepted.length > before || closed, "passed on or closed");
      if (reset) socket.resetAndDestroy();
      else socket.destroy();
      return accepted.length > before;
    };
    try {
      assertEquals([await attempt(true), await attempt(true)], [true, true]);
      // Both clients are gone, their server sides live on: the source's cap
      // is reached. Before: the slots went with the clients, and every
      // further connection was passed on.
      assertEquals(await attempt(true), false);
      assertEquals(events, ["refused_per_source"]);
      // The server closes one: its slot is back.
      accepted[0].close();
      await waitUntil(async () => await attempt(true), "a connection passed on again", {
        intervalMs: 50,
      });
    } finally {
      front.stopAccepting();
      for (const c of accepted.slice(1)) c.close();
      target.close();
      await accepting;
      await front.drain();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
