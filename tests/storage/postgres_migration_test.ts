/**
 * The schema migration at start survives what a commit survives: its
 * connection killed mid-way (PostgreSQL restarted, `pg_terminate_backend`,
 * a failover) fails the start with one clear error — it never ends the
 * process — and leaves no half-applied schema, so the next start migrates.
 * Real PostgreSQL.
 *
 * @module
 */
import {
  migrate,
  MIGRATION_LOCK,
  SCHEMA_VERSION,
} from "../../runtime-adapters/deno/postgres/schema.ts";
import { KeyboundError } from "../../src/errors.ts";
import { assert, assertEquals } from "../_assert.ts";
import { ignoreUnless } from "../_tools.ts";
import { waitUntil } from "../_wait.ts";
import { postgresMissing, startPostgres } from "../ha/_postgres.ts";

const ignore = ignoreUnless("PostgreSQL tests", postgresMissing);

Deno.test({
  name:
    "PostgresBackend: a connection killed mid-migration fails the start, and the next start migrates",
  ignore,
  async fn() {
    await using pg = await startPostgres();
    await pg.createDatabase("mig");
    // Another session holds the migration lock, so the start waits inside its migration.
    const holder = pg.client("mig");
    try {
      await holder`SELECT pg_advisory_lock(${MIGRATION_LOCK})`;
      const starting = pg.backend("mig").then(
        () => new Error("the start succeeded"),
        (err: unknown) => err,
      );
      const waiting = async () =>
        (await pg.psql(
          "mig",
          "SELECT count(*) FROM pg_stat_activity " +
            "WHERE application_name = 'keybound-auth' AND wait_event = 'advisory'",
        )).trim() === "1";
      await waitUntil(waiting, "the start to wait for the migration lock", { timeoutMs: 30_000 });
      await pg.psql(
        "mig",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity " +
          "WHERE application_name = 'keybound-auth' AND wait_event = 'advisory'",
      );
      const err = await starting;
      assert(err instanceof KeyboundError, `expected a KeyboundError, got ${err}`);
      assertEquals(err.code, "BACKEND_UNAVAILABLE", err.message);
      assert(!err.message.includes("\n"), err.message);
      assertEquals(
        (await pg.psql("mig", "SELECT to_regclass('keybound_schema') IS NULL")).trim(),
        "t",
        "nothing of the killed migration remains",
      );
      await holder`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`;
    } finally {
      await holder.end({ timeout: 1 });
    }
    const b = await pg.backend("mig");
    try {
      assert(
        (await b.commit({ checks: [], mutations: [{ type: "set", key: ["k"], value: 1 }] })).ok,
      );
      assertEquals((await b.get(["k"]))?.value, 1);
    } finally {
      await b.close();
    }
  },
});

Deno.test({
  name:
    "migrate: starts that waited for another's migration on a SERIALIZABLE-default database all succeed",
  ignore,
  async fn() {
    await using pg = await startPostgres();
    await pg.createDatabase("ser");
    await pg.psql("ser", "ALTER DATABASE ser SET default_transaction_isolation TO 'serializable'");
    const connect = () => pg.client("ser");
    const holder = connect();
    const starts = [connect(), connect(), connect()];
    try {
      // Every start takes its snapshot, then waits for the lock: none can see the others' schema.
      await holder`SELECT pg_advisory_lock(${MIGRATION_LOCK})`;
      const results = starts.map((sql) =>
        migrate(sql).then((v) => `ok ${v}`, (e: unknown) => `failed ${(e as Error).message}`)
      );
      const waiting = async () =>
        (await pg.psql(
          "ser",
          "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'",
        )).trim() === String(starts.length);
      await waitUntil(waiting, "every start to wait for the migration lock", { timeoutMs: 30_000 });
      await holder`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`;
      assertEquals(await Promise.all(results), starts.map(() => `ok ${SCHEMA_VERSION}`));
      assertEquals(
        (await pg.psql("ser", `SELECT count(*) FROM keybound_schema`)).trim(),
        String(SCHEMA_VERSION),
      );
    } finally {
      await Promise.all([holder, ...starts].map((sql) => sql.end({ timeout: 1 })));
    }
  },
});
