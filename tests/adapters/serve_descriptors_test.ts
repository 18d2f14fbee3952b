/**
 * `serveApp` (runtime-adapters/deno/serve.ts) when the process runs out of
 * descriptors: `Deno.serve` stops listening for good at its first failed
 * accept, so serveApp listens again on the same address. In a child process
 * under `prlimit --nofile`, idle connections take every descriptor, then go;
 * the server must answer again, and say once that it listened again. Behind
 * the front it does not: another process could take the freed port before
 * this one knows it was freed, and receive the front's decrypted traffic.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { waitUntil } from "../_wait.ts";
import { noPrlimit, prlimitChild } from "./_front.ts";

const NO_PRLIMIT = noPrlimit();

const libs = `
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
`;

/** The composition of serve.ts's serveService: a front before a loopback server that moves. */
const frontedSource = `${libs}
const inner = serveApp({ fetch: () => new Response("ok") }, {
  hostname: "127.0.0.1",
  port: 0,
  log,
  relisten: false,
});
const front = await startFront({
  hostname: "127.0.0.1",
  port: 0,
  balancers: new Set(),
  target: { hostname: "127.0.0.1", port: inner.addr.port },
  log,
});
console.log(JSON.stringify({ port: front.addr.port, inner: inner.addr.port }));
await inner.finished;
`;

const childSource = `
import { serveApp } from ${
  JSON.stringify(new URL("../../runtime-adapters/deno/serve.ts", import.meta.url).href)
};
import { createLogger } from ${
  JSON.stringify(new URL("../../src/util/log.ts", import.meta.url).href)
};
const log = createLogger({ format: "json", write: (line) => console.log(line) });
const server = serveApp({ fetch: () => new Response("ok") }, { hostname: "127.0.0.1", port: 0, log });
console.log(JSON.stringify({ port: server.addr.port }));
await server.finished;
`;

/** Opens connections to `port` until it refuses (its listener is gone) or 120 are open. */
async function exhaust(port: number, idle: Deno.Conn[]): Promise<void> {
  for (let i = 0; i < 120; i++) {
    try {
      idle.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    } catch {
      return;
    }
  }
}

/** One GET, its body, or "" if the connection is refused or no answer comes within 2 s. */
async function get(port: number): Promise<string> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) });
    return await r.text();
  } catch {
    return "";
  }
}

Deno.test({
  name: "serveApp: after Deno.serve stopped on running out of descriptors it listens again",
  ignore: NO_PRLIMIT !== undefined,
  async fn() {
    const child = prlimitChild(60, childSource);
    const lines = child.lines;
    const idle: Deno.Conn[] = [];
    try {
      const { port } = await child.json<{ port: number }>("port");
      assertEquals(await get(port), "ok", "served before");
      // More connections than the child has descriptors: its accept fails.
      await exhaust(port, idle);
      const relistened = () => lines.filter((l) => l.includes("listening again"));
      await waitUntil(() => relistened().length > 0, "the restart in the log");
      for (const c of idle.splice(0)) c.close();
      await waitUntil(async () => (await get(port)) === "ok", "served after", {
        timeoutMs: 20_000,
        intervalMs: 100,
      });
      assert(relistened()[0].includes("Too many open files"), relistened()[0]);
    } finally {
      for (const c of idle) c.close();
      await child.stop();
    }
  },
});

Deno.test({
  name: "serveApp behind the front: out of descriptors it fails closed, never listening again",
  ignore: NO_PRLIMIT !== undefined,
  async fn() {
    const child = prlimitChild(60, frontedSource);
    const idle: Deno.Conn[] = [];
    try {
      const { port, inner } = await child.json<{ port: number; inner: number }>("port");
      assertEquals(await get(port), "ok", "served before");
      // The loopback server runs out of descriptors: its freed port could be
      // taken by another local process before this one knows it was freed,
      // so the process ends instead of listening on any port again.
      await exhaust(inner, idle);
      for (const c of idle.splice(0)) c.close();
      const status = await child.exited();
      assertEquals(status.success, false, "the process went on");
      assertEquals(child.lines.filter((l) => l.includes("listening again")), []);
    } finally {
      for (const c of idle) c.close();
      await child.stop();
    }
  },
});
