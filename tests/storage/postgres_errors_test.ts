/**
 * Which real driver failures say a statement was certainly never sent
 * (`neverSent`): a commit failing that way fails at once; any other lost
 * connection makes it read its version back, since PostgreSQL may have run
 * it. Real PostgreSQL and real refused connections.
 *
 * @module
 */
import { openPool } from "../../runtime-adapters/deno/postgres/pool.ts";
import {
  isUnavailable,
  neverSent,
  sessionKept,
  toBackendError,
} from "../../runtime-adapters/deno/postgres/errors.ts";
import { assert, assertEquals } from "../_assert.ts";
import { ignoreUnless } from "../_tools.ts";
import { freePort } from "../tbot/_harness.ts";
import { postgresMissing, startPostgres, TEST_APPLICATION } from "../ha/_postgres.ts";
import { waitUntil } from "../_wait.ts";

Deno.test({
  name: "neverSent: a refused connection yes; a session ended under a running statement no",
  ignore: ignoreUnless("PostgreSQL tests", postgresMissing),
  async fn() {
    const nobody = openPool({
      host: "127.0.0.1",
      port: freePort(),
      database: "x",
      user: "x",
      max: 1,
      session: { application_name: TEST_APPLICATION },
    });
    try {
      const refused = await nobody`SELECT 1`.then(() => undefined, (e: unknown) => e);
      assert(isUnavailable(refused), String(refused));
      assert(neverSent(refused), String(refused));
    } finally {
      await nobody.end({ timeout: 1 });
    }

    await using pg = await startPostgres();
    const sql = pg.client("postgres");
    try {
      const running = sql`SELECT pg_sleep(60)`.then(() => undefined, (e: unknown) => e);
      const sleeping = async () =>
        (await pg.psql(
          "postgres",
          `SELECT count(*) FROM pg_stat_activity WHERE application_name = '${TEST_APPLICATION}' ` +
            "AND wait_event = 'PgSleep'",
        )).trim() === "1";
      await waitUntil(sleeping, "the statement to run", { timeoutMs: 30_000, intervalMs: 50 });
      await pg.stop(); // fast shutdown: the session ends under the statement
      const ended = await running;
      assert(isUnavailable(ended), String(ended));
      assertEquals(neverSent(ended), false, String(ended));
    } finally {
      await sql.end({ timeout: 1 });
    }
  },
});

Deno.test("a session the server ends for an idle timeout (57P05, 25P03) is a lost connection", () => {
  // 57P05 from a real server: tests/ha/postgres_idle_timeout_test.ts. 25P03 cannot reach the
  // backend's statements (none waits inside a transaction) and the driver passes it rarely.
  for (const code of ["57P05", "25P03"]) {
    const err = Object.assign(new Error("terminating connection due to idle timeout"), { code });
    assert(isUnavailable(err), code);
    // Maybe sent (the rule for every lost connection): a commit reads its version back.
    assertEquals(neverSent(err), false, code);
    assertEquals(toBackendError(err, "127.0.0.1:5432/kb").code, "BACKEND_UNAVAILABLE", code);
    assertEquals(sessionKept(err), false, code);
  }
});

Deno.test("sessionKept: a write refused on a read-only session (25006) leaves the session alive", () => {
  const readOnly = Object.assign(new Error("cannot execute INSERT in a read-only transaction"), {
    code: "25006",
  });
  assert(isUnavailable(readOnly));
  assert(sessionKept(readOnly));
  for (const code of ["57P01", "ECONNRESET", "08006"]) {
    assertEquals(sessionKept(Object.assign(new Error(code), { code })), false, code);
  }
});
