/**
 * The commit pool's synchronous_commit (review-pg S2, session 12): a commit is raised to `on`
 * only when the server's level is `off`; any other level is the operator's and stays. A
 * synchronous standby that never confirms (none connected) shows which level a commit ran at:
 * `on` waits for it (wait event SyncRep), `local` does not.
 */
import { PostgresBackend } from "../../runtime-adapters/deno/postgres/backend.ts";
import { parsePostgresUrl } from "../../runtime-adapters/deno/postgres/url.ts";
import { assertEquals } from "../_assert.ts";
import { ignoreUnless } from "../_tools.ts";
import { waitUntil } from "../_wait.ts";
import { PG_PASSWORD, postgresMissing, type PostgresServer, startPostgres } from "./_postgres.ts";

const ignore = ignoreUnless("PostgreSQL tests", postgresMissing);

/** Sessions waiting for a synchronous standby's confirmation. */
async function syncRepWaiters(pg: PostgresServer): Promise<number> {
  return Number(
    (await pg.psql(
      "postgres",
      "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
    )).trim(),
  );
}

/**
 * A backend on database `kb` whose synchronous_commit is `level`, on a server whose
 * synchronous standby `standby1` is named but never connects.
 */
async function withAbsentStandby(pg: PostgresServer, level: string): Promise<PostgresBackend> {
  await pg.createDatabase("kb");
  // The database's own default (the fixture's command line sets `off`, which ALTER SYSTEM
  // does not override), before any session of the backend starts.
  await pg.psql("postgres", `ALTER DATABASE kb SET synchronous_commit = '${level}'`);
  await pg.psql("postgres", "ALTER SYSTEM SET synchronous_standby_names = 'standby1'");
  await pg.psql("postgres", "SELECT pg_reload_conf()");
  return await PostgresBackend.open({
    location: parsePostgresUrl(pg.url("kb")),
    password: PG_PASSWORD,
  });
}

Deno.test({
  name: "PostgresBackend: server synchronous_commit=local is kept: commits do not wait for an " +
    "absent synchronous standby",
  ignore,
  async fn() {
    await using pg = await startPostgres();
    const backend = await withAbsentStandby(pg, "local");
    try {
      let settled = false;
      const committing = backend.commit({
        checks: [],
        mutations: [{ type: "set", key: ["k"], value: 1 }],
      }).finally(() => (settled = true));
      // Raised to `on` (a startup parameter did that), the commit waits for the standby for ever.
      await waitUntil(
        async () => settled || await syncRepWaiters(pg) > 0,
        "the commit to end or wait",
      );
      assertEquals(await syncRepWaiters(pg), 0);
      assertEquals(await committing, { ok: true });
    } finally {
      await pg.psql("postgres", "ALTER SYSTEM SET synchronous_standby_names = ''");
      await pg.psql("postgres", "SELECT pg_reload_conf()");
      await backend.close();
    }
  },
});

Deno.test({
  name: "PostgresBackend: server synchronous_commit=off is raised to on: commits wait for the " +
    "synchronous standby",
  ignore,
  async fn() {
    await using pg = await startPostgres();
    const backend = await withAbsentStandby(pg, "off");
    try {
      let settled = false;
      const committing = backend.commit({
        checks: [],
        mutations: [{ type: "set", key: ["k"], value: 1 }],
      }).finally(() => (settled = true));
      // Left at `off`, the commit returns without waiting (nor flushing its WAL).
      await waitUntil(
        async () => settled || await syncRepWaiters(pg) > 0,
        "the commit to end or wait",
      );
      assertEquals(settled, false, "the commit did not wait for the standby");
      // No standby named any more: the waiting commit is released.
      await pg.psql("postgres", "ALTER SYSTEM SET synchronous_standby_names = ''");
      await pg.psql("postgres", "SELECT pg_reload_conf()");
      assertEquals(await committing, { ok: true });
      assertEquals((await backend.get(["k"]))?.value, 1);
    } finally {
      await backend.close();
    }
  },
});
