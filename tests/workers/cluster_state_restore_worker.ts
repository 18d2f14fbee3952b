/**
 * Test Worker hosting the ClusterState Durable Object for
 * ./cluster_state_restore_test.ts, with one test-only method: storing an entry
 * the way ClusterState did before its versions were UUIDs (a counter, as an
 * INTEGER in the same column), to check that such rows still compare.
 *
 * @module
 */
import { ClusterState } from "../../runtime-adapters/workers/cluster_state_do.ts";
import { encodeSqlKey } from "../../runtime-adapters/workers/sql_key.ts";
import type { JsonValue } from "../../src/storage/backend.ts";

/** ClusterState plus {@linkcode ClusterStateWithOldRows.writeOldRow}. */
export class ClusterStateWithOldRows extends ClusterState {
  /** Stores `value` at `key` with counter version `version`, as the counter code wrote it. */
  writeOldRow(key: string[], value: JsonValue, version: number): void {
    this.ctx.storage.sql.exec(
      `INSERT OR REPLACE INTO kb_entries (key, value, version, expires_at) VALUES (?, ?, ?, ?)`,
      encodeSqlKey(key),
      JSON.stringify(value),
      version,
      null,
    );
  }
}

export default {
  fetch(): Response {
    return new Response("ClusterState host", { status: 404 });
  },
};
