/**
 * A server that closes connections without a word before their first query
 * (right after the TLS handshake; after refusing TLS and reading the
 * start-up message): the driver alone reconnects at once for the pending
 * query, hundreds of times a second, and the query waits for ever. The
 * backend paces those connects, fails the query BACKEND_UNAVAILABLE after a
 * few, says so in one log line per burst, and reads resume once the server
 * answers again. Real PostgreSQL (TLS) behind a proxy on 127.0.0.1 that
 * turns into such a server.
 *
 * @module
 */
import type { PostgresBackend } from "../../runtime-adapters/deno/postgres/backend.ts";
import type { KeyboundError } from "../../src/errors.ts";
import { createLogger } from "../../src/util/log.ts";
import { assert, assertEquals } from "../_assert.ts";
import { ignoreUnless } from "../_tools.ts";
import { waitUntil } from "../_wait.ts";
import { postgresMissing, type PostgresServer, startPostgres } from "./_postgres.ts";
import { type PostgresProxy, type ProxyMode, startPostgresProxy } from "./_postgres_proxy.ts";

/** "ok" or the error code of a read, once it ends; the bound is the failure of a read that hangs. */
async function settledRead(backend: PostgresBackend): Promise<string> {
  let settled: string | undefined;
  backend.get(["k"]).then(
    () => (settled = "ok"),
    (err) => (settled = (err as KeyboundError).code ?? String(err)),
  );
  await waitUntil(() => settled !== undefined, "a read to end", {
    timeoutMs: 30_000,
    intervalMs: 20,
  });
  return settled!;
}

/**
 * The pools' connections terminated and the proxy in `mode`: two reads both
 * fail, after a few connects; back to forwarding, reads succeed again.
 */
async function burst(
  pg: PostgresServer,
  proxy: PostgresProxy,
  backend: PostgresBackend,
  mode: ProxyMode,
): Promise<void> {
  await backend.get(["k"]);
  // The next read needs a new connection, through the proxy's new mode.
  await pg.psql(
    "postgres",
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity " +
      "WHERE application_name = 'keybound-auth'",
  );
  proxy.mode = mode;
  const before = proxy.connects;
  assertEquals(await settledRead(backend), "BACKEND_UNAVAILABLE");
  assertEquals(await settledRead(backend), "BACKEND_UNAVAILABLE");
  // Each read: three silent closes, then the next attempt fails it without connecting (fewer
  // when the first read meets a terminated connection). The driver alone made hundreds a
  // second, the read still waiting.
  const made = proxy.connects - before;
  assert(made <= 6, `${made} connects for two reads`);
  proxy.mode = "forward";
  await waitUntil(() => settledRead(backend).then((r) => r === "ok"), "reads to resume", {
    timeoutMs: 30_000,
    intervalMs: 20,
  });
}

Deno.test({
  name: "PostgresBackend: a server that closes before the first query: connects paced, " +
    "reads fail BACKEND_UNAVAILABLE, one log line per burst, reads resume",
  ignore: ignoreUnless("PostgreSQL tests", postgresMissing),
  async fn(t) {
    await using pg = await startPostgres({ tls: true });
    await pg.createDatabase("kb");
    await using proxy = startPostgresProxy(pg.port, pg.tlsDir!);
    const cases: [ProxyMode, string][] = [
      ["close after TLS", "require"],
      ["close after refusing TLS", "prefer"],
    ];
    for (const [mode, sslmode] of cases) {
      await t.step(`${mode} (sslmode=${sslmode})`, async () => {
        const lines: string[] = [];
        proxy.mode = "forward";
        const backend = await pg.backend("kb", {
          port: proxy.port,
          sslmode,
          log: createLogger({ write: (l) => lines.push(l) }),
        });
        try {
          await burst(pg, proxy, backend, mode);
          assertEquals(lines.length, 1, lines.join("\n"));
          // The reads that resumed ended that burst: the next is said again.
          await burst(pg, proxy, backend, mode);
          assertEquals(lines.length, 2, lines.join("\n"));
          for (const line of lines) {
            assert(line.includes("WARN"), line);
            assert(line.includes(`server=127.0.0.1:${proxy.port}/kb`), line);
          }
        } finally {
          await backend.close();
        }
      });
    }
    await t.step("PostgreSQL refusing the login is no silent close", async () => {
      const lines: string[] = [];
      proxy.mode = "forward";
      const log = createLogger({ write: (l) => lines.push(l) });
      // Twice: the first refusal's close is judged after the driver handled it, by the second's.
      for (let i = 0; i < 2; i++) {
        const refused = await pg.backend("kb", { port: proxy.port, password: "wrong", log })
          .then(() => "opened", (err) => (err as KeyboundError).code);
        assertEquals(refused, "CONFIG_INVALID");
      }
      assertEquals(lines, []);
    });
  },
});
