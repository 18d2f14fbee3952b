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
import { assert, assertEquals } from "../_assert.ts";
import { waitUntil } from "../_wait.ts";
import { PROXY_V2_SIGNATURE } from "../../src/server/proxy_protocol.ts";
import { noPrlimit } from "./_front.ts";

const NO_PRLIMIT = noPrlimit();

/** Descriptors the child may hold: a few dozen above what Deno itself opens. */
const NOFILE = 64;

/**
 * The child: a plain front behind which Deno.serve answers "ok". 127.0.0.1 is
 * its balancer, so an idle connection waits for its PROXY header with one
 * descriptor (a client's own would do the same before its TLS handshake);
 * the setup limit is long so that none is closed by it during the test.
 */
const CHILD = `
import { serveApp } from ${
  JSON.stringify(new URL("../../runtime-adapters/deno/serve.ts", import.meta.url).href)
};
import { startFront } from ${
  JSON.stringify(new URL("../../runtime-adapters/deno/tls_front.ts", import.meta.url).href)
};
import { createLogger } from ${
  JSON.stringify(new URL("../../src/util/log.ts", import.meta.url).href)
};
const log = createLogger({ format: "json", write: (line) => console.log(line) });
const inner = serveApp({ fetch: () => new Response("ok") }, { hostname: "127.0.0.1", port: 0 });
const front = await startFront({
  hostname: "127.0.0.1",
  port: 0,
  balancers: new Set(["127.0.0.1"]),
  target: { hostname: "127.0.0.1", port: inner.addr.port },
  log,
  setupTimeoutMs: 120_000,
  // No cap on connections held: this test is about descriptors running out
  // anyway (the default cap, derived from the limit, would evict before).
  maxConnections: Infinity,
});
console.log(JSON.stringify({ port: front.addr.port }));
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

Deno.test({
  name: "front: after running out of descriptors it logs the shortage and accepts again",
  ignore: NO_PRLIMIT !== undefined,
  async fn() {
    const child = new Deno.Command("prlimit", {
      args: [`--nofile=${NOFILE}`, Deno.execPath(), "eval", "--ext=ts", CHILD],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines: string[] = [];
    const reading = (async () => {
      let buffered = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        buffered += chunk;
        const parts = buffered.split("\n");
        buffered = parts.pop()!;
        lines.push(...parts);
      }
    })();
    const idle: Deno.Conn[] = [];
    try {
      await waitUntil(() => lines.some((l) => l.startsWith('{"port"')), "the child's port", {
        timeoutMs: 30_000,
      });
      const { port } = JSON.parse(lines.find((l) => l.startsWith('{"port"'))!);
      assert((await request(port)).endsWith("ok"), "served before");

      // Far more connections than descriptors; the rest wait in the backlog.
      for (let i = 0; i < NOFILE * 2; i++) {
        idle.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      }
      const shortage = () => lines.filter((l) => l.includes("cannot accept connections"));
      await waitUntil(() => shortage().length > 0, "the shortage in the log");
      for (const conn of idle.splice(0)) conn.close();

      let answer = "";
      await waitUntil(async () => (answer = await request(port)).endsWith("ok"), "served after", {
        timeoutMs: 20_000,
        intervalMs: 100,
      });
      assert(answer.startsWith("HTTP/1.1 200"), answer);
      // Once per shortage, not once per failed accept.
      assertEquals(shortage().length, 1, shortage().join("\n"));
    } finally {
      for (const conn of idle) conn.close();
      try {
        child.kill("SIGKILL");
      } catch {
        // It has exited (crashed) already.
      }
      await child.status;
      await reading;
    }
  },
});
