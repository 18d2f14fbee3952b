/**
 * The public front (runtime-adapters/deno/tls_front.ts) when the process
 * runs out of descriptors: in a child process under `prlimit --nofile`,
 * idle connections take every descriptor; the front logs the shortage once,
 * and once they are gone it accepts and serves again. (`node:net`'s server,
 * which the front accepted with before, stopped accepting for good after one
 * failed accept, silently: review6 M2.)
 *
 * @module
 */
import net from "node:net";
import { assert, assertEquals } from "../_assert.ts";
import { waitUntil } from "../_wait.ts";
import { PROXY_V2_SIGNATURE } from "../../src/server/proxy_protocol.ts";
import { noPrlimit, prlimitChild, servedChildSource } from "./_front.ts";

const NO_PRLIMIT = noPrlimit();

/** Descriptors the child may hold: a few dozen above what Deno itself opens. */
const NOFILE = 64;

/**
 * The child: a plain front behind which Deno.serve answers "ok", with
 * `options` of its own. 127.0.0.1 is its balancer, so an idle connection
 * from it waits for its PROXY header with one descriptor; one from another
 * address is passed to the server (3 descriptors); the setup limit is long
 * so that none is closed by it during the test.
 */
const childSource = (options: string) => `
import { serveApp } from ${
  JSON.stringify(new URL("../../runtime-adapters/deno/serve.ts", import.meta.url).href)
};
import { defaultMaxConnections, startFront } from ${
  JSON.stringify(new URL("../../runtime-adapters/deno/tls_front.ts", import.meta.url).href)
};
import { createLogger } from ${
  JSON.stringify(new URL("../../src/util/log.ts", import.meta.url).href)
};
const log = createLogger({ format: "json", write: (line) => console.log(line) });
const targetPort =
  serveApp({ fetch: () => new Response("ok") }, { hostname: "127.0.0.1", port: 0, log }).addr.port;
const front = await startFront({
  hostname: "127.0.0.1",
  port: 0,
  balancers: new Set(["127.0.0.1"]),
  target: { hostname: "127.0.0.1", port: targetPort },
  log,
  setupTimeoutMs: 120_000,
  onEvent: (event) => console.log(JSON.stringify({ event })),
  ${options}
});
console.log(JSON.stringify({ port: front.addr.port, max: defaultMaxConnections(undefined, true) }));
`;

/** A v2 PROXY header of a LOCAL connection (a balancer's health check): no address. */
const PROXY_LOCAL = Uint8Array.from([...PROXY_V2_SIGNATURE, 0x20, 0x00, 0, 0]);

/** One request through the front, its answer, or "" if none comes within 2 s. */
async function request(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  // Bounded: a front that does not accept leaves the connection in its
  // backlog, unanswered; no speed target.
  const timer = setTimeout(() => conn.close(), 2_000);
  let text = "";
  try {
    await conn.write(
      new Uint8Array([
        ...PROXY_LOCAL,
        ...new TextEncoder().encode("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
      ]),
    );
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
  } catch {
    // Closed by the timer (or reset): what was read is the answer.
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Already closed by the timer.
    }
  }
  return text;
}

/**
 * The auth service's composition (serve.ts's serveService): the front
 * before Deno.serve on a Unix socket in a private directory, both in the
 * child, as in the auth process. Out of descriptors, Deno.serve stops for
 * good at its first failed accept: it then listens again on its socket
 * (before session 10, on a loopback port, it could not safely, and the
 * process failed closed, which made this test flaky while it ran here).
 */
const servedSource = (dir: string) =>
  servedChildSource(
    dir,
    "127.0.0.1",
    "{ maxConnections: Infinity, onEvent: (event) => console.log(JSON.stringify({ event })) }",
  );

Deno.test({
  name: "front: after running out of descriptors it logs the shortage and serves again",
  ignore: NO_PRLIMIT !== undefined,
  async fn() {
    // No cap on connections held: this test is about descriptors running
    // out anyway (the default cap, derived from the limit, would evict before).
    // Its own directory for the socket: the child is killed, and what it
    // leaves goes with this one.
    const parent = await Deno.makeTempDir({ prefix: "kb-front-" });
    const child = prlimitChild(NOFILE, servedSource(`${parent}/front`));
    const lines = child.lines;
    const idle: net.Socket[] = [];
    try {
      const { port } = await child.json<{ port: number }>("port");
      assert((await request(port)).endsWith("ok"), "served before");

      // Far more connections than descriptors, from a direct client (the
      // balancer's waiting for their header are capped at an eighth of the
      // limit); the rest wait in the backlog.
      for (let i = 0; i < NOFILE * 2; i++) {
        const s = net.connect({ host: "127.0.0.1", port, localAddress: "127.0.0.2" });
        s.on("error", () => {});
        idle.push(s);
        await new Promise((r) => s.once("connect", r));
      }
      const shortage = () => lines.filter((l) => l.includes("cannot accept connections"));
      await waitUntil(() => shortage().length > 0, "the shortage in the log");
      for (const s of idle.splice(0)) s.destroy();

      let answer = "";
      await waitUntil(async () => (answer = await request(port)).endsWith("ok"), "served after", {
        timeoutMs: 20_000,
        intervalMs: 100,
      });
      assert(answer.startsWith("HTTP/1.1 200"), answer);
      // Once per shortage, not once per failed accept.
      assertEquals(shortage().length, 1, shortage().join("\n"));
      // Connections that could not reach the server meanwhile: once per burst
      // too (was one line each, ~100 in this test), with a stable reason.
      const unreachable = lines.filter((l) => l.includes("at the public front: the server behind"));
      assert(unreachable.length <= 1, unreachable.join("\n"));
      assert(unreachable.every((l) => JSON.parse(l).reason === "server_unreachable"));
      assertEquals(lines.filter((l) => l.includes("(connection to the server)")), []);
    } finally {
      for (const s of idle) s.destroy();
      await child.stop();
      await Deno.remove(parent, { recursive: true });
    }
  },
});

/** The child under `prlimit --nofile=nofile`; `started()` gives its port and default cap. */
function spawnChild(nofile: number, options: string) {
  const child = prlimitChild(nofile, childSource(options));
  return { ...child, started: () => child.json<{ port: number; max: number }>("port") };
}

/** A keep-alive request from `from` (no PROXY header): its status line, or "" if closed first. */
function directRequest(from: string, port: number, open: net.Socket[]): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port, localAddress: from }, () => {
      s.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    });
    open.push(s);
    s.on("error", () => {});
    s.once("data", (d: Uint8Array) => resolve(new TextDecoder().decode(d).split("\r\n")[0]));
    s.once("close", () => resolve(""));
  });
}

Deno.test({
  name:
    "front: behind a balancer its default cap leaves descriptors for connections awaiting headers",
  ignore: NO_PRLIMIT !== undefined || Deno.build.os !== "linux",
  async fn() {
    const child = spawnChild(256, "");
    const open: net.Socket[] = [];
    try {
      const { port, max } = await child.started();
      // As many connections held as the default cap (3 descriptors each),
      // from 8 direct sources, kept alive.
      for (let i = 0; i < max; i++) {
        assertEquals(await directRequest(`127.0.0.${2 + i % 8}`, port, open), "HTTP/1.1 200 OK");
      }
      // The balancer opens as many more and sends no header (one descriptor each).
      for (let i = 0; i < max; i++) {
        const s = net.connect({ host: "127.0.0.1", port });
        s.on("error", () => {});
        open.push(s);
        await new Promise((r) => s.once("connect", r));
      }
      // A new client is served (the oldest of a largest source makes room)...
      await waitUntil(
        async () => await directRequest("127.0.0.20", port, open) === "HTTP/1.1 200 OK",
        "a new client served",
        { intervalMs: 100 },
      );
      // ...and no accept failed for want of a descriptor. Before: the waiting
      // connections were outside the fit (64 held and 64 waiting under 256).
      const failed = child.lines.filter((l) => l.includes("cannot accept connections"));
      assertEquals(failed, []);
      assert(child.lines.some((l) => l.includes("refused_awaiting_header")), "the excess refused");
    } finally {
      for (const s of open) s.destroy();
      await child.stop();
    }
  },
});
