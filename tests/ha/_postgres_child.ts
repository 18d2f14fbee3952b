/**
 * A test process that starts a PostgreSQL fixture, says where it is (one
 * JSON line on stdout) and waits to be killed: postgres_orphan_test.ts
 * kills it as a CI job or a person would.
 *
 * @module
 */
import { startPostgres } from "./_postgres.ts";

const pg = await startPostgres();
console.log(JSON.stringify({ dir: pg.dir, server: pg.serverPid(), watchdog: pg.watchdogPid }));
setInterval(() => {}, 3_600_000);
