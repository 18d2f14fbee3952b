/**
 * `serveApp` (runtime-adapters/deno/serve.ts) when the process runs out of
 * descriptors: `Deno.serve` stops listening for good at its first failed
 * accept, so serveApp listens again on the same address. In a child process
 * under `prlimit --nofile`, idle connections take every descriptor, then go;
 * the server must answer again, and say once that it listened again; behind
 * the front too, where it listens on a Unix socket in a private directory
 * (a freed loopback port could be taken by another process before this one
 * knew it was freed, and receive the front's decrypted traffic).
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { waitUntil } from "../_wait.ts";
import { noPrlimit, prlimitChild, servedChildSource } from "./_front.ts";

const NO_PRLIMIT = noPrlimit();

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
  name: "serveService: out of descriptors the server behind the front listens again on its socket",
  ignore: NO_PRLIMIT !== undefined,
  async fn() {
    const parent = await Deno.makeTempDir({ prefix: "kb-serve-" });
    const dir = `${parent}/front`;
    const child = prlimitChild(60, servedChildSource(dir, "127.0.0.2"));
    const idle: Deno.Conn[] = [];
    try {
      const { port } = await child.json<{ port: number }>("port");
      assertEquals(await get(port), "ok", "served before");
      // Only its user may enter, whatever the umask (0022 here).
      assertEquals(Deno.statSync(dir).mode! & 0o777, 0o700);
      // Connections to the server's own socket (this test runs as its user)
      // until its accept fails: Deno.serve stops for good then. Before
      // session 10 it was on a loopback port, which another process could
      // take once freed, so the process exited instead (fail closed).
      // The child's socket, PID-RANDOM.sock, the only one there (beside its lock file).
      const [path] = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".sock"))
        .map((e) => `${dir}/${e.name}`);
      for (let i = 0; i < 120; i++) {
        try {
          idle.push(await Deno.connect({ transport: "unix", path }));
        } catch {
          break;
        }
      }
      const relistened = () => child.lines.filter((l) => l.includes("listening again"));
      await waitUntil(() => relistened().length > 0, "the restart in the log");
      assert(relistened()[0].includes(path), relistened()[0]);
      for (const c of idle.splice(0)) c.close();
      await waitUntil(async () => (await get(port)) === "ok", "served after", {
        timeoutMs: 20_000,
        intervalMs: 100,
      });
    } finally {
      for (const c of idle) c.close();
      await child.stop();
      await Deno.remove(parent, { recursive: true });
    }
  },
});
