/**
 * `ClusterState`: the auth service's whole state in one SQLite-backed Durable
 * Object, so every read and compare-and-swap is strongly consistent. The
 * Worker reaches it through {@linkcode DoBackend} (./do_backend.ts) over RPC;
 * the methods here mirror `Backend` from src/storage/backend.ts.
 *
 * Atomicity: `commit` runs its checks and writes inside one
 * `transactionSync`, with no `await` in between, so no other request can
 * interleave and a throw rolls everything back.
 *
 * Versions: each commit's writes get one random UUID (122 random bits), as
 * PostgreSQL's do, never a counter kept in this object's SQLite: a
 * point-in-time restore winds that SQLite back while the auth Workers'
 * isolates keep their caches (lock set, CAs: filed by version) and clients
 * keep the versions they read, so a counter would hand out a version seen
 * before the restore for other content, and a stale cache would be trusted
 * or a stale compare-and-swap accepted. Rows written before this (an
 * INTEGER counter in the same column) keep that version and compare as its
 * decimal text: the counter no longer moves, so those versions were each
 * handed out by one commit and never come back with other content.
 *
 * @module
 */
import {
  assertListAfter,
  type AtomicOperation,
  type CommitResult,
  type Entry,
  type JsonValue,
  type Key,
  type ListOptions,
} from "../../src/storage/backend.ts";
import { randomUuid } from "../../src/crypto/random.ts";
import { DurableObject } from "./durable_object.ts";
import { decodeSqlKey, encodeSqlKey, sqlPrefixRange } from "./sql_key.ts";
import type { DurableObjectState } from "./types.ts";

// `version` keeps its INTEGER declaration (SQLite cannot change a column's
// type in place): a UUID is never a numeric literal, so the column's affinity
// stores it as TEXT unchanged, while rows from before hold their counter as an
// INTEGER. kb_meta held that counter; it is no longer read or written.
const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS kb_entries (
     key TEXT PRIMARY KEY,
     value TEXT NOT NULL,
     version INTEGER NOT NULL,
     expires_at INTEGER
   )`,
  `CREATE INDEX IF NOT EXISTS kb_entries_expiry ON kb_entries (expires_at)
     WHERE expires_at IS NOT NULL`,
];

/** A stored version: a UUID (TEXT), or a counter (INTEGER) from before UUIDs. */
type StoredVersion = string | number;

type Row = { key: string; value: string; version: StoredVersion };

/** The RPC surface of {@linkcode ClusterState}, as seen through a stub. */
export interface ClusterStateRpc {
  /** See `Backend.get`. */
  get(key: string[]): Promise<Entry | null>;
  /** See `Backend.list`. */
  list(prefix: string[], options?: ListOptions): Promise<Entry[]>;
  /** See `Backend.commit`. */
  commit(op: AtomicOperation): Promise<CommitResult>;
}

function assertKey(key: unknown, field: string): asserts key is Key {
  if (!Array.isArray(key) || !key.every((p) => typeof p === "string")) {
    throw new TypeError(`${field} must be an array of strings`);
  }
}

/** The Durable Object holding a cluster's state (bind it as `CLUSTER_STATE`). */
export class ClusterState extends DurableObject<unknown> {
  /**
   * @param ctx the object's state
   * @param env the Worker's bindings (unused)
   */
  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env);
    for (const statement of SCHEMA) ctx.storage.sql.exec(statement);
  }

  /** Reads one live entry. */
  get(key: string[]): Entry | null {
    assertKey(key, "key");
    const row = this.ctx.storage.sql.exec<Row>(
      `SELECT key, value, version FROM kb_entries
        WHERE key = ? AND (expires_at IS NULL OR expires_at > ?)`,
      encodeSqlKey(key),
      Date.now(),
    ).toArray()[0];
    return row
      ? { key: [...key], value: JSON.parse(row.value), version: String(row.version) }
      : null;
  }

  /** Lists live entries strictly under `prefix`, in key order. */
  list(prefix: string[], options: ListOptions = {}): Entry[] {
    assertKey(prefix, "prefix");
    assertListAfter(prefix, options.after);
    const range = sqlPrefixRange(prefix);
    let low = range?.low ?? "";
    // "~" sorts after every encoded key (hex digits and ".").
    let high = range?.high ?? "~";
    let lowOp = ">=";
    if (options.after !== undefined) {
      const after = encodeSqlKey(options.after);
      if (options.reverse) high = after;
      else [low, lowOp] = [after, ">"];
    }
    const rows = this.ctx.storage.sql.exec<Row>(
      `SELECT key, value, version FROM kb_entries
        WHERE key ${lowOp} ? AND key < ? AND (expires_at IS NULL OR expires_at > ?)
        ORDER BY key ${options.reverse ? "DESC" : "ASC"} LIMIT ?`,
      low,
      high,
      Date.now(),
      options.limit ?? -1,
    ).toArray();
    return rows.map((r) => ({
      key: decodeSqlKey(r.key),
      value: JSON.parse(r.value) as JsonValue,
      version: String(r.version),
    }));
  }

  /** Applies all mutations if every check holds, atomically; otherwise nothing. */
  commit(op: AtomicOperation): CommitResult {
    for (const c of op.checks) assertKey(c.key, "checks[].key");
    for (const m of op.mutations) assertKey(m.key, "mutations[].key");
    const sql = this.ctx.storage.sql;
    return this.ctx.storage.transactionSync((): CommitResult => {
      const now = Date.now();
      sql.exec(`DELETE FROM kb_entries WHERE expires_at <= ?`, now);
      for (const c of op.checks) {
        const row = sql.exec<{ version: StoredVersion }>(
          `SELECT version FROM kb_entries WHERE key = ?`,
          encodeSqlKey(c.key),
        ).toArray()[0];
        if ((row ? String(row.version) : null) !== c.version) return { ok: false };
      }
      if (op.mutations.length === 0) return { ok: true };
      const version = randomUuid();
      for (const m of op.mutations) {
        if (m.type === "delete") {
          sql.exec(`DELETE FROM kb_entries WHERE key = ?`, encodeSqlKey(m.key));
        } else {
          sql.exec(
            `INSERT OR REPLACE INTO kb_entries (key, value, version, expires_at) VALUES (?, ?, ?, ?)`,
            encodeSqlKey(m.key),
            JSON.stringify(m.value),
            version,
            m.expiresAt ?? null,
          );
        }
      }
      return { ok: true };
    });
  }
}
