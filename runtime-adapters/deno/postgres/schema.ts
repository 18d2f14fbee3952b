/**
 * The backend's tables, created and migrated on start. Every starter takes
 * one transaction-scoped advisory lock first, so N instances starting at once
 * on an empty database apply each step exactly once; the applied steps are
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

/** Arbitrary constant naming Keybound's migration lock among advisory locks. */
const MIGRATION_LOCK = 0x4b42_5347; // "KBSG"

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

/**
 * Creates or migrates the schema; returns the version now in place. Throws
 * `ConfigError` if the database holds a newer schema than this code knows.
 */
export async function migrate(sql: Sql): Promise<number> {
  return await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx.unsafe(`CREATE TABLE IF NOT EXISTS ${VERSION_TABLE} (
      version integer PRIMARY KEY CHECK (version > 0),
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const [{ current }] = await tx.unsafe<{ current: number }[]>(
      `SELECT coalesce(max(version), 0)::int AS current FROM ${VERSION_TABLE}`,
    );
    if (current > SCHEMA_VERSION) {
      throw new ConfigError(
        `storage: the database schema is version ${current}, newer than this Keybound ` +
          `understands (${SCHEMA_VERSION}); upgrade Keybound or use another database`,
      );
    }
    for (let v = current + 1; v <= SCHEMA_VERSION; v++) {
      await tx.unsafe(STEPS[v - 1]);
      await tx.unsafe(`INSERT INTO ${VERSION_TABLE} (version) VALUES ($1)`, [v]);
    }
    return SCHEMA_VERSION;
  });
}
