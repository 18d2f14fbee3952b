/**
 * Every postgres.js client is built by `openPool` (pool.ts): the backend's
 * pools and each client a test or bench opens itself. A client built with
 * the driver's defaults fetches the server's array types on each new
 * connection from a promise nothing awaits; PostgreSQL stopping during that
 * fetch rejects it unhandled, which ends the process — for a test, the whole
 * `deno test --parallel` run with every other file in it.
 *
 * @module
 */
import { assertEquals } from "../_assert.ts";
import { ignoreUnless } from "../_tools.ts";
import {
  collectUnhandled,
  lockWaiters,
  postgresMissing,
  startPostgres,
  TEST_APPLICATION,
} from "../ha/_postgres.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const POOL = "runtime-adapters/deno/postgres/pool.ts";

/** Source files under `dir` (relative to the repository), recursively. */
function* sources(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(`${ROOT}${dir}`)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* sources(path);
    else if (/\.(ts|js|mjs)$/.test(e.name)) yield path;
  }
}

Deno.test("postgres.js clients: only pool.ts imports the driver's constructor", () => {
  // A value import of the driver (default or named), or its npm specifier: both can construct a
  // client; `import type` cannot.
  const valueImport = /^import\s+(?!type\b)[^;]*from\s+["'](?:postgres|npm:postgres[^"']*)["']/m;
  const offenders = ["src", "runtime-adapters", "tests", "bench", "scripts"]
    .flatMap((d) => [...sources(d)])
    .filter((p) => p !== POOL && valueImport.test(Deno.readTextFileSync(`${ROOT}${p}`)));
  assertEquals(offenders, []);
});

Deno.test({
  name: "PostgresServer.client: PostgreSQL stopped while its connections start up: " +
    "the queries fail, nothing rejects unhandled",
  ignore: ignoreUnless("PostgreSQL tests", postgresMissing),
  async fn() {
    using unhandled = collectUnhandled();
    await using pg = await startPostgres();
    await pg.createDatabase("kb");
    await pg.psql("kb", "CREATE TABLE t (k int)");
    const sql = pg.client("kb", { max: 8 });
    try {
      // Without fetch_types: false each new connection first reads pg_type, and waits there.
      const lock = await pg.lock("kb", ["pg_catalog.pg_type", "t"]);
      const reads = Array.from(
        { length: 8 },
        () => sql`SELECT k FROM t`.then(() => "ok", (e) => e?.code ?? String(e)),
      );
      await lockWaiters(pg, reads.length, TEST_APPLICATION);
      await pg.stop(); // ends the lock's session too
      await lock[Symbol.asyncDispose]();
      const codes = await Promise.all(reads);
      assertEquals(codes.filter((c) => c === "ok"), [], "every query was cut");
    } finally {
      await sql.end({ timeout: 1 });
    }
    assertEquals(unhandled.reasons, []);
  },
});
