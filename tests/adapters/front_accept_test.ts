/**
 * The public front's accept loop under connections reset before their
 * accept (review-front M1): Deno 2.9.6's accept throws NotConnected for each
 * such queued connection; taken for a descriptor shortage, it paused the
 * loop up to 1 s a time, so a few hundred resets kept the port dark for
 * minutes. Real sockets on 127.0.0.1: the front of serveService (plain HTTP,
 * front mode through `proxyFrom`) and clients that reset (SO_LINGER 0,
 * through node:net's resetAndDestroy) before sending a byte. Each such loss
 * is counted on `/metrics` under its own reason, `reset_at_accept`.
 *
 * @module
 */
import net from "node:net";
import { assert, assertEquals } from "../_assert.ts";
import { readToEnd } from "./_front.ts";
import { serveService } from "../../runtime-adapters/deno/serve.ts";
import { spawnAuthService } from "../../runtime-adapters/deno/auth_process.ts";
import { waitUntil } from "../_wait.ts";
import type { FrontEvent } from "../../src/server/metrics.ts";
import { silentLogger } from "../../src/util/log.ts";

/** Connects to `port` and resets the connection (RST) before any byte. */
function resetOne(port: number): Promise<void> {
  return new Promise((done) => {
    const s = net.connect(port, "127.0.0.1", () => {
      s.resetAndDestroy();
      done();
    });
    s.on("error", () => done());
  });
}

/** One GET with `connection: close`; its answer's status line, or why none (never throws). */
async function get(port: number, signal: AbortSignal): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const abort = () => conn.close();
  signal.addEventListener("abort", abort);
  if (signal.aborted) abort();
  try {
    await conn.write(
      new TextEncoder().encode("GET /x HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
    );
    const text = await readToEnd(conn);
    return text.split("\r\n")[0] || "no answer";
  } catch (err) {
    return `no answer: ${(err as Error).name}`;
  } finally {
    signal.removeEventListener("abort", abort);
    try {
      conn.close();
    } catch {
      // Closed by the abort.
    }
  }
}

Deno.test("front: connections reset before their accept do not stop the port (review-front M1)", async () => {
  const events: FrontEvent[] = [];
  const parent = await Deno.makeTempDir({ prefix: "kb-accept-" });
  const server = await serveService({ fetch: () => new Response("ok") }, {
    hostname: "127.0.0.1",
    port: 0,
    // Front mode without TLS, so the client's bytes are plain.
    proxyFrom: ["192.0.2.77"],
    socketDir: `${parent}/front`,
    log: silentLogger,
    front: { onEvent: (e) => events.push(e) },
  });
  const port = server.addr.port;
  // A bound, not a timing: before the fix the 400 resets below held the
  // port for minutes; served, an answer takes milliseconds.
  const bound = AbortSignal.timeout(30_000);
  try {
    const statuses: string[] = [];
    for (let round = 0; round < 4; round++) {
      // 100 resets, 25 at a time, with a client among them.
      const during = get(port, bound);
      for (let i = 0; i < 100; i += 25) {
        await Promise.all(Array.from({ length: 25 }, () => resetOne(port)));
      }
      statuses.push(await during);
    }
    statuses.push(await get(port, bound));
    assertEquals(statuses, Array(5).fill("HTTP/1.1 200 OK"));
    // Not one was taken for a shortage.
    assert(!events.includes("accept_failed"), `events: ${events.join(",")}`);
  } finally {
    await server.shutdown();
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("auth process: connections reset in the listen queue count as lost reset_at_accept on /metrics", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "kb-accept-auth-" });
  const auth = await spawnAuthService({ dataDir, args: ["--diag-addr", "127.0.0.1:0"] });
  const port = Number(new URL(auth.url).port);
  const counters = async () => {
    const text = await (await fetch(`${auth.diagUrl}/metrics`)).text();
    const of = (re: RegExp) => re.exec(text)?.[1];
    return {
      lost: of(/^keybound_auth_front_connections_lost_total\{reason="reset_at_accept"\} (\d+)$/m),
      failed: of(/^keybound_auth_front_accept_failures_total (\d+)$/m),
    };
  };
  try {
    assertEquals(await counters(), { lost: "0", failed: "0" });
    // Stopped, the process accepts nothing: the kernel completes each handshake into the listen
    // queue, and the client resets it there. Resumed, each of its accepts fails so.
    Deno.kill(auth.pid, "SIGSTOP");
    try {
      for (let i = 0; i < 20; i++) await resetOne(port);
    } finally {
      Deno.kill(auth.pid, "SIGCONT");
    }
    await waitUntil(async () => (await counters()).lost === "20", "20 resets counted");
    assertEquals(await counters(), { lost: "20", failed: "0" });
  } finally {
    await auth.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});
