/**
 * The commit pool's synchronous_commit (review-pg S2, session 12): a commit is raised to `on`
 * only when the server's level is `off`; any other level is the operator's and stays. A
 * synchronous standby that never confirms (none connected) shows which level a commit ran at:
 * `on` waits for it (wait event SyncRep), `local` does not.
 */
import { assertEquals } from "../_assert.ts";
import { ignoreUnless } from "../_tools.ts";
import { waitUntil } from "../_wait.ts";
import { postgresMissing, type PostgresServer, startPostgres } from "./_postgres.ts";

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

/** The synchronous_commit levels a server may have, and whether a commit then waits for its standby. */
const LEVELS: { level: string; waits: boolean; why: string }[] = [
  // Raised to `on` (a startup parameter did that), the commit waited for the standby for ever.
  { level: "local", waits: false, why: "is kept: commits do not wait for" },
  // Left at `off`, the commit returns without waiting (nor flushing its WAL).
  { level: "off", waits: true, why: "is raised to on: commits wait for" },
];

for (const { level, waits, why } of LEVELS) {
  Deno.test({
    name:
      `PostgresBackend: server synchronous_commit=${level} ${why} an absent synchronous standby`,
    ignore,
    async fn() {
      await using pg = await startPostgres();
      await pg.createDatabase("kb");
      // The database's own default (the fixture's command line sets `off`, which ALTER SYSTEM
      // does not override), before any session of the backend starts. A synchronous standby
      // `standby1` is named but never connects.
      await pg.psql("postgres", `ALTER DATABASE kb SET synchronous_commit = '${level}'`);
      const standby = async (names: string) => {
        await pg.psql("postgres", `ALTER SYSTEM SET synchronous_standby_names = '${names}'`);
        await pg.psql("postgres", "SELECT pg_reload_conf()");
      };
      await standby("standby1");
      await using backend = await pg.backend("kb");
      try {
        let settled = false;
        const committing = backend.commit({
          checks: [],
          mutations: [{ type: "set", key: ["k"], value: 1 }],
        }).finally(() => (settled = true));
        await waitUntil(
          async () => settled || await syncRepWaiters(pg) > 0,
          "the commit to end or wait",
        );
        assertEquals(
          { settled, waiting: await syncRepWaiters(pg) > 0 },
          { settled: !waits, waiting: waits },
        );
        // No standby named any more: a waiting commit is released.
        await standby("");
        assertEquals(await committing, { ok: true });
        assertEquals((await backend.get(["k"]))?.value, 1);
      } finally {
        await standby("");
      }
    },
  });
}
