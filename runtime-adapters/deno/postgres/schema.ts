/**
 * The backend's tables, created and migrated on start, in one statement.
 * Every starter takes one transaction-scoped advisory lock first, so N
 * instances starting at once on an empty database apply each step exactly once; the applied steps are
 * rows of `keybound_schema`, and a database whose schema is newer than this
 * code knows is refused rather than written with the wrong assumptions.
 *
 * @module
 */
import type { Sql } from "postgres";
import { ConfigError } from "../../../src/errors.ts";

/** The key-value table. */
export const KV_TABLE = "keybound_kv";
/** The schema version table. */
export const VERSION_TABLE = "keybound_schema";

/** Arbitrary constant naming Keybound's migration lock among advisory locks (exported for tests). */
export const MIGRATION_LOCK = 0x4b42_5347; // "KBSG"

/**
 * The migration steps, in order; step `i` brings the schema to version `i+1`.
 * Never edit a released step: append a new one.
 */
const STEPS: readonly string[] = [
  // Keys are order-preserving bytes (key_codec.ts); values are the JSON text
  // as written; the version is a fresh random UUID per commit, so a restored
  // backup never repeats a version a client may still hold; expires_at is
  // epoch milliseconds judged by the database clock, which all instances share.
  `CREATE TABLE ${KV_TABLE} (
     key bytea PRIMARY KEY,
     value json NOT NULL,
     version uuid NOT NULL,
     expires_at bigint
   );
   CREATE INDEX ${KV_TABLE}_expires ON ${KV_TABLE} (expires_at) WHERE expires_at IS NOT NULL;`,
];

/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = STEPS.length;

/** SQLSTATE the migration raises when the database's schema is newer than {@linkcode STEPS}. */
const NEWER_SCHEMA = "KB001";

/**
 * The whole migration as one statement (a `DO` block: one implicit
 * transaction): the advisory lock, the version table, the check, and each
 * missing step with its version row.
 */
const MIGRATION = `DO $migrate$
DECLARE current integer;
BEGIN
  PERFORM pg_advisory_xact_lock(${MIGRATION_LOCK});
  CREATE TABLE IF NOT EXISTS ${VERSION_TABLE} (
    version integer PRIMARY KEY CHECK (version > 0),
    applied_at timestamptz NOT NULL DEFAULT now()
  );
  SELECT coalesce(max(version), 0) INTO current FROM ${VERSION_TABLE};
  IF current > ${SCHEMA_VERSION} THEN
    RAISE EXCEPTION USING ERRCODE = '${NEWER_SCHEMA}', MESSAGE = current::text;
  END IF;
${
  STEPS.map((step, i) =>
    `  IF current < ${i + 1} THEN
    ${step}
    INSERT INTO ${VERSION_TABLE} (version) VALUES (${i + 1});
  END IF;`
  ).join("\n")
}
END
$migrate$`;

/**
 * Creates or migrates the schema; returns the version now in place. Throws
 * `ConfigError` if the database holds a newer schema than this code knows.
 *
 * One statement, never a `BEGIN … COMMIT` block, for the reason commits are
 * one statement (./backend.ts): a connection that dies inside a block makes
 * the driver throw where nothing can catch it. A statement on a dead
 * connection only fails, and PostgreSQL rolls all of it back, so a start
 * killed mid-migration leaves nothing half-applied and the next one migrates.
 */
export async function migrate(sql: Sql): Promise<number> {
  for (let attempt = 1;; attempt++) {
    try {
      await sql.unsafe(MIGRATION);
      return SCHEMA_VERSION;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === NEWER_SCHEMA) {
        throw new ConfigError(
          `storage: the database schema is version ${(err as Error).message}, newer than this ` +
            `Keybound understands (${SCHEMA_VERSION}); upgrade Keybound or use another database`,
        );
      }
      // Where the database's default isolation is REPEATABLE READ or SERIALIZABLE, the
      // statement's snapshot predates the advisory lock it waited for, so a start that
      // waited for another's migration does not see its tables and runs the steps again.
      // A new statement takes a new snapshot and then finds the schema in place.
      if (!RACED_ANOTHER_MIGRATION.has(String(code)) || attempt === MIGRATION_ATTEMPTS) throw err;
    }
  }
}

/** SQLSTATEs of a migration that ran on a snapshot older than another start's migration. */
const RACED_ANOTHER_MIGRATION = new Set([
  "42P07", // duplicate_table
  "42710", // duplicate_object
  "23505", // unique_violation (the version row)
  "40001", // serialization_failure
]);

/** A start retries its migration this many times in all. */
const MIGRATION_ATTEMPTS = 3;
