/**
 * {@linkcode Backend} on PostgreSQL, shared by several auth instances.
 *
 * Each commit is one SERIALIZABLE transaction that reads the checked keys,
 * compares versions, and applies the mutations only if every check holds.
 * Serializable isolation is what makes absent-key checks safe: two
 * transactions that each found a different key absent and wrote the other
 * (write skew) cannot both commit, which row locks alone do not give. A
 * transaction PostgreSQL aborts as a serialization failure is retried from
 * the start, re-reading the checked keys, so a loser ends with `{ ok: false }`
 * and never half-applies.
 *
 * That transaction is a single statement (data-modifying CTEs gated on the
 * checks) on a pool whose sessions default to SERIALIZABLE, never a
 * `BEGIN … COMMIT` block: when a connection dies inside a block (PostgreSQL
 * stopped or restarted, a failover, `pg_terminate_backend`), the driver
 * (postgres 3.4.9) sends its own ROLLBACK on the dead socket from a deferred
 * callback, and that throws where nothing can catch it: the whole auth
 * process exited. A lone statement on a dead connection only fails.
 *
 * Expiry is judged by the database clock (`now()`), shared by every
 * instance, in every read and check; a background sweep deletes expired rows
 * in small batches. Versions are random UUIDs, one per commit.
 *
 * @module
 */
import type { Sql } from "postgres";
import { checkServerIdentity } from "node:tls";
import { Buffer } from "node:buffer";
import {
  assertListAfter,
  type AtomicOperation,
  type Backend,
  type CommitResult,
  type Entry,
  type JsonValue,
  type Key,
  type ListOptions,
} from "../../../src/storage/backend.ts";
import { KeyboundError } from "../../../src/errors.ts";
import { decodeKey, encodeKey, prefixRange } from "./key_codec.ts";
import {
  errorCode,
  isUnavailable,
  neverSent,
  notSerializable,
  RETRY_SQLSTATES,
  sessionKept,
  toBackendError,
  toStartupError,
} from "./errors.ts";
import { KV_TABLE, migrate } from "./schema.ts";
import { ConnectBackoff, openPool, type PoolOptions } from "./pool.ts";
import { createLogger, type Logger } from "../../../src/util/log.ts";
import type { PostgresLocation } from "./url.ts";

/** Attempts of a commit that keeps losing serialization races. */
const COMMIT_ATTEMPTS = 60;
/** Rows deleted per expiry sweep transaction. */
const SWEEP_BATCH = 500;
/**
 * How long a commit whose connection was lost waits for the database to say
 * whether it applied (a crash's recovery), before it fails unanswered.
 */
const READ_BACK_MS = 3_000;
/** How long {@linkcode PostgresBackend.close} waits for the requests in flight. */
const CLOSE_WAIT_MS = 5_000;
/** Mean period of the expiry sweep; each instance adds jitter. */
const SWEEP_PERIOD_MS = 60_000;

/**
 * SQL evaluated in each write's transaction, before its commit: raises this
 * transaction's `synchronous_commit` to `on` when it is `off`, and leaves any
 * other level as the operator set it. With `off` (a server tuned for speed)
 * PostgreSQL answers a commit before its WAL is flushed, and a crash loses
 * commits the auth service already acted on: a lost join commit leaves a bot
 * holding a certificate newer than the stored one, taken for a stolen
 * identity (GENERATION_MISMATCH, its token locked). `local` (chosen so that
 * commits do not wait for a synchronous standby; with that standby down, `on`
 * would hang every commit), `remote_write`, `on` and `remote_apply` all flush
 * locally first and are kept. Transaction-local (`set_config(…, true)`, as
 * `SET LOCAL`): PostgreSQL reads the setting when it commits, so it follows
 * the server's setting as it is now (a reload, a role's or database's own),
 * with no extra round trip.
 */
const DURABLE_COMMIT = `CASE WHEN current_setting('synchronous_commit') = 'off'
  THEN set_config('synchronous_commit', 'on', true) END`;

/** The database clock in epoch milliseconds, as SQL. */
const NOW_MS = "floor(extract(epoch from now()) * 1000)::bigint";
const LIVE = `(expires_at IS NULL OR expires_at > ${NOW_MS})`;

/**
 * A commit: the checks, then the mutations only if every check held, as one
 * statement (see {@linkcode PostgresBackend.commit}). $1 checks, $2 deleted
 * keys, $3 set entries (JSON), $4 the commit's version.
 */
const COMMIT_SQL = `WITH want AS (
     SELECT decode(c->>'key', 'hex') AS key, c->>'version' AS version
     FROM json_array_elements($1::text::json) AS c
   ), verdict AS (
     SELECT current_setting('transaction_isolation') = 'serializable' AS isolated,
       NOT EXISTS (
       SELECT 1 FROM want
       LEFT JOIN ${KV_TABLE} kv ON kv.key = want.key
         AND (kv.expires_at IS NULL OR kv.expires_at > ${NOW_MS})
       WHERE kv.version::text IS DISTINCT FROM want.version
     ) AS ok
   ), go AS (
     SELECT ok AND isolated AS go FROM verdict
   ), deleted AS (
     DELETE FROM ${KV_TABLE}
     WHERE key = ANY (ARRAY(
         SELECT decode(k, 'hex') FROM json_array_elements_text($2::text::json) AS k
       ))
       AND (SELECT go FROM go)
     RETURNING 1
   ), written AS (
     INSERT INTO ${KV_TABLE} (key, value, version, expires_at)
     SELECT decode(m->>'key', 'hex'), m->'value', $4::uuid, (m->>'expires_at')::bigint
     FROM json_array_elements($3::text::json) AS m
     WHERE (SELECT go FROM go)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value,
       version = excluded.version, expires_at = excluded.expires_at
     RETURNING 1
   )
   SELECT ok, isolated, ${DURABLE_COMMIT} AS durable FROM verdict`;

/**
 * The lost-answer check ({@linkcode PostgresBackend.commit}'s `#wrote`): $1
 * key (hex), $2 the version looked for.
 */
const CHECK_SQL = `UPDATE ${KV_TABLE} SET version = version
  WHERE key = decode($1, 'hex') AND version = $2::uuid RETURNING ${DURABLE_COMMIT}`;

/**
 * The PostgreSQL session (backend pid, from the driver's BackendKeyData)
 * that ran `statement`, once the driver sent it there. Read it as the
 * statement fails, before any await: postgres 3.4.9 keeps one such record
 * per connection object and overwrites it when that object connects again
 * (BackendKeyData in its connection.js), which takes a round trip, so only
 * a later read could name the next session.
 */
function sessionOf(statement: Promise<unknown> | undefined): number | undefined {
  const pid = (statement as { state?: { pid?: unknown } } | undefined)?.state?.pid;
  return typeof pid === "number" ? pid : undefined;
}

/** Options of {@linkcode PostgresBackend.open}. */
export interface PostgresBackendOptions {
  /** Where to connect. */
  location: PostgresLocation;
  /** The role's password, if the server asks for one. */
  password?: string;
  /** Most connections of each of the two pools, reads and commits (default 10 each). */
  maxConnections?: number;
  /** Seconds to wait for a connection (default 5). */
  connectTimeoutSeconds?: number;
  /** Where connection trouble is said (default: text lines on stderr). */
  log?: Logger;
}

async function tlsOption(loc: PostgresLocation): Promise<PoolOptions["ssl"]> {
  switch (loc.sslmode) {
    case "disable":
    case "allow": // libpq's first attempt under "allow" is without TLS
      return false;
    case "prefer":
    case "require":
      return loc.sslmode;
    case "verify-ca":
    case "verify-full": {
      const ca = loc.sslrootcert ? await Deno.readTextFile(loc.sslrootcert) : undefined;
      return {
        rejectUnauthorized: true,
        ...(ca ? { ca } : {}),
        // verify-ca trusts any name the CA vouches for; verify-full needs the host's.
        checkServerIdentity: loc.sslmode === "verify-ca"
          ? () => undefined
          : (_: string, cert: Parameters<typeof checkServerIdentity>[1]) =>
            checkServerIdentity(loc.host, cert),
      };
    }
  }
}

function hex(key: Key): string {
  return Buffer.from(encodeKey(key)).toString("hex");
}

interface Row {
  key: Uint8Array;
  value: string;
  version: string;
}

/** A {@linkcode Backend} in a PostgreSQL database. */
export class PostgresBackend implements Backend {
  #sql: Sql;
  /** Sessions that default to SERIALIZABLE: each commit is one statement on it. */
  #tx: Sql;
  #where: string;
  #sweep: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #connects: ConnectBackoff;
  /** Requests started and not yet settled, for {@linkcode close}. */
  #inFlight = 0;
  /** Called when {@linkcode #inFlight} drops to 0 (close() waiting). */
  #settled: (() => void) | undefined;
  /** The first close()'s work: every later close() waits for it too. */
  #closing: Promise<void> | undefined;

  private constructor(sql: Sql, tx: Sql, where: string, connects: ConnectBackoff) {
    this.#sql = sql;
    this.#tx = tx;
    this.#where = where;
    this.#connects = connects;
  }

  /**
   * Connects, creates or migrates the schema, and checks the login works.
   * Throws one clear `KeyboundError` (bad password, unknown database,
   * unreachable server, newer schema) and leaves nothing open on failure.
   */
  static async open(o: PostgresBackendOptions): Promise<PostgresBackend> {
    const loc = o.location;
    let ssl;
    try {
      ssl = await tlsOption(loc);
    } catch (err) {
      throw toStartupError(
        new Error(`cannot read sslrootcert ${loc.sslrootcert}: ${(err as Error).message}`),
        loc.display,
        loc.user,
      );
    }
    const connects = new ConnectBackoff(
      loc.display,
      o.log ?? createLogger({ component: "storage" }),
    );
    const pool = (session: Record<string, string>) =>
      openPool({
        host: loc.host,
        port: loc.port,
        database: loc.database,
        user: loc.user,
        ...(o.password !== undefined ? { password: o.password } : {}),
        ssl,
        max: o.maxConnections,
        connectTimeoutSeconds: o.connectTimeoutSeconds,
        session: { application_name: "keybound-auth", ...session },
        connects,
      });
    const sql = pool({});
    // Commits are made durable per transaction (DURABLE_COMMIT), not by a startup parameter,
    // which would override every level the server has, `local` and `remote_apply` too.
    const tx = pool({ default_transaction_isolation: "serializable" });
    try {
      await migrate(sql);
      const [{ level }] = await tx.unsafe<{ level: string }[]>(
        "SELECT current_setting('transaction_isolation') AS level",
      );
      if (level !== "serializable") throw notSerializable(loc.display);
      connects.succeeded();
    } catch (err) {
      await Promise.all([sql, tx].map((p) => p.end({ timeout: 1 }).catch(() => {})));
      throw toStartupError(err, loc.display, loc.user);
    }
    const backend = new PostgresBackend(sql, tx, loc.display, connects);
    backend.#scheduleSweep();
    return backend;
  }

  #open(): void {
    // The code the other backends give once closed (memory.ts, do_backend.ts): nothing was
    // sent, and the caller's own close made it so.
    if (this.#closed) throw new KeyboundError("STORAGE_ERROR", "storage backend is closed");
  }

  async #run<T>(f: () => Promise<T>): Promise<T> {
    this.#open();
    this.#inFlight++;
    try {
      const result = await f();
      this.#connects.succeeded();
      return result;
    } catch (err) {
      throw toBackendError(err, this.#where);
    } finally {
      if (--this.#inFlight === 0) this.#settled?.();
    }
  }

  #entry<T>(r: Row): Entry<T> {
    return { key: decodeKey(r.key), value: JSON.parse(r.value) as T, version: r.version };
  }

  get<T = JsonValue>(key: Key): Promise<Entry<T> | null> {
    return this.#run(async () => {
      const rows = await this.#sql.unsafe<Row[]>(
        `SELECT key, value::text AS value, version::text AS version FROM ${KV_TABLE}
         WHERE key = decode($1, 'hex') AND ${LIVE}`,
        [hex(key)],
      );
      return rows.length ? this.#entry<T>(rows[0]) : null;
    });
  }

  list<T = JsonValue>(prefix: Key, options: ListOptions = {}): Promise<Entry<T>[]> {
    assertListAfter(prefix, options.after);
    return this.#run(async () => {
      const range = prefixRange(prefix);
      let lo = Buffer.from(range.after).toString("hex");
      let hi = Buffer.from(range.before).toString("hex");
      if (options.after !== undefined) {
        if (options.reverse) hi = hex(options.after);
        else lo = hex(options.after);
      }
      const limit = options.limit === undefined ? null : Math.max(0, Math.floor(options.limit));
      const rows = await this.#sql.unsafe<Row[]>(
        `SELECT key, value::text AS value, version::text AS version FROM ${KV_TABLE}
         WHERE key > decode($1, 'hex') AND key < decode($2, 'hex') AND ${LIVE}
         ORDER BY key ${options.reverse ? "DESC" : "ASC"} LIMIT $3`,
        [lo, hi, limit],
      );
      return rows.map((r) => this.#entry<T>(r));
    });
  }

  commit(op: AtomicOperation): Promise<CommitResult> {
    // The last mutation of a key wins, as if they were applied in order.
    const final = new Map<string, AtomicOperation["mutations"][number]>();
    for (const m of op.mutations) final.set(hex(m.key), m);
    const sets = [...final].filter(([, m]) => m.type === "set");
    const deletes = [...final].filter(([, m]) => m.type === "delete").map(([k]) => k);
    const checks = op.checks.map((c) => ({ key: hex(c.key), version: c.version }));
    return this.#run(async () => {
      for (let attempt = 1;; attempt++) {
        const version = crypto.randomUUID();
        let statement: Promise<{ ok: boolean; isolated: boolean }[]> | undefined;
        try {
          // The checks, then the mutations only if every check held: one statement, so one
          // serializable transaction (the deleted and written CTEs run whether or not the
          // final SELECT reads them, on the statement's one snapshot). Every row is reached
          // through the primary key: a sequential scan would take a predicate lock on the
          // whole table, and every concurrent commit would then fail serialization.
          // Lists travel as JSON: the driver sends a JS array as a PostgreSQL array only
          // once it has fetched the server's array types, which a fresh pool's first query
          // may not have (seen: "malformed array literal").
          statement = this.#tx.unsafe<{ ok: boolean; isolated: boolean }[]>(
            COMMIT_SQL,
            [
              JSON.stringify(checks),
              JSON.stringify(deletes),
              JSON.stringify(sets.map(([key, m]) => ({
                key,
                value: m.type === "set" ? m.value : null,
                expires_at: m.type === "set" && m.expiresAt !== undefined
                  ? Math.ceil(m.expiresAt)
                  : null,
              }))),
              version,
            ],
          );
          const [row] = await statement;
          // The statement is one compare-and-swap only at SERIALIZABLE (under read committed
          // two commits checking the same version both apply). The level comes from a startup
          // parameter, which a pooler told to ignore it drops silently: refuse, change nothing.
          if (!row.isolated) throw notSerializable(this.#where);
          return row.ok ? { ok: true as const } : { ok: false as const };
        } catch (err) {
          // A connection lost after the statement may have gone out: PostgreSQL may have
          // committed it and only the answer was lost (a crash or restart in that instant). The
          // version is this attempt's own: found durably, the commit applied and is answered as
          // such. Not found (or not confirmed in time): BACKEND_UNAVAILABLE, outcome unknown
          // (tbot keeps its pending join and resumes it, docs/protocol.md §4.9).
          // A session that answered and lives on (25006) is not ended: another commit the
          // driver sent on it may be running there now.
          const lost = sessionKept(err) ? undefined : sessionOf(statement);
          // A commit that only deletes writes no version to look for: its session is ended all
          // the same, so that it cannot apply after its BACKEND_UNAVAILABLE answer. One that
          // only checks changes nothing.
          if (
            (sets.length > 0 || deletes.length > 0) && isUnavailable(err) && !neverSent(err) &&
            await this.#wrote(sets.length > 0 ? sets[0][0] : undefined, version, lost)
          ) {
            return { ok: true as const };
          }
          const code = errorCode(err);
          if (code === undefined || !RETRY_SQLSTATES.has(code) || attempt >= COMMIT_ATTEMPTS) {
            throw err;
          }
          const ceiling = Math.min(50, 2 ** Math.min(attempt, 6));
          await new Promise((r) => setTimeout(r, Math.random() * ceiling));
        }
      }
    });
  }

  /**
   * Whether `key` holds `version` durably: a write that changes nothing (the
   * same version again), on the commit pool, for at most
   * {@linkcode READ_BACK_MS}; false if it cannot say by then. A read would not
   * do: a commit whose session ended while it waited for a synchronous
   * standby ("committed locally, but might not have been replicated") is
   * visible on the primary, and a failover to that standby loses it; an old
   * primary restarted as a readable replica answers reads too. This write
   * fails on a standby (25006), and its own commit, later in the WAL than the
   * one looked for, returns only once that WAL is as durable as a commit's
   * ({@linkcode DURABLE_COMMIT}): flushed, and confirmed by the synchronous
   * standbys unless the server's level is `local`. Tried again while the
   * database cannot answer (it crashed with the commit's connection and is
   * recovering). A concurrent commit of the key can fail it (40001): false,
   * the answer that never claims a write that may be lost. `lost`, the
   * session the commit was sent to, is ended first (`#endSession`), within
   * the same deadline; without `key` (a commit that only deletes) that is
   * all, and the answer false.
   */
  async #wrote(key: string | undefined, version: string, lost?: number): Promise<boolean> {
    const deadline = performance.now() + READ_BACK_MS;
    let checking: Promise<unknown> | undefined;
    let givenUp = false;
    const attempts = async () => {
      for (let pause = 50;; pause = Math.min(pause * 2, 500)) {
        try {
          if (lost !== undefined) {
            await this.#endSession(lost, deadline);
            lost = undefined;
          }
          // No key: the session ended is all that was asked.
          if (givenUp || key === undefined) return false;
          const write = this.#tx.unsafe<{ count: number }[]>(CHECK_SQL, [key, version]);
          checking = write;
          return (await write).count > 0;
        } catch (err) {
          checking = undefined;
          if (
            givenUp || !isUnavailable(err) || this.#closed || performance.now() + pause > deadline
          ) {
            return false;
          }
          await new Promise((r) => setTimeout(r, pause));
        }
      }
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      // The whole attempt is raced against the one deadline, ending the session too: the
      // check's write waits for a standby that may never confirm, and the end of the session
      // goes out on the read pool, behind reads a stalled pool (an ACCESS EXCLUSIVE lock
      // queued, a connection gone silent) may hold for minutes. Given up, what is still in
      // flight ends on its own and finds `givenUp`; a late pg_terminate_backend ends only
      // the lost commit, whose outcome was answered unknown.
      return await Promise.race([
        attempts().catch(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => {
            givenUp = true;
            resolve(false);
            if (checking) this.#cancelCheck(checking);
          }, READ_BACK_MS);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Ends the session `pid` if it still runs a commit (its connection was
   * lost under it), and waits until it is gone, at most until `deadline`.
   * PostgreSQL notices a lost client only when it next writes to it: a
   * commit still running (waiting for a row lock, say) would otherwise
   * apply after the check looked, its request already answered with an
   * unknown outcome. Ended, it rolls back, or it committed before: the
   * check's answer is final either way.
   */
  async #endSession(pid: number, deadline: number): Promise<void> {
    try {
      if (!await this.#signal("pg_terminate_backend", pid, COMMIT_SQL)) return;
    } catch (err) {
      // Tried again while the database cannot answer; refused (a privilege), the check goes
      // ahead as it did before sessions were ended.
      if (isUnavailable(err)) throw err;
      return;
    }
    while (performance.now() < deadline) {
      const [{ running }] = await this.#sql.unsafe<{ running: boolean }[]>(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1) AS running",
        [pid],
      );
      if (!running) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Sends `fn` (pg_cancel_backend or pg_terminate_backend) to session `pid`
   * only while it runs `sql` (the start of its text): a pid names another
   * session once this one is gone, and PostgreSQL ignores a cancel that
   * reaches a session waiting for its next command. From the read pool, in
   * SQL: the driver's own cancel opens a connection the server closes
   * without a byte, which pool.ts takes for a silent close, and the promise
   * it makes is out of reach. True if the session was signalled.
   */
  async #signal(fn: "pg_cancel_backend" | "pg_terminate_backend", pid: number, sql: string) {
    const rows = await this.#sql.unsafe<{ sent: boolean }[]>(
      `SELECT ${fn}(pid) AS sent FROM pg_stat_activity
       WHERE pid = $1 AND state = 'active' AND starts_with(query, $2)`,
      [pid, sql.slice(0, 60)],
    );
    return rows.some((r) => r.sent);
  }

  /**
   * Cancels a lost-answer check's write given up on while PostgreSQL still
   * runs it (waiting for a synchronous standby, or for a row lock): left
   * waiting, it held a commit connection until the standby came back. A
   * cancelled wait for a standby ends with a warning (the write changed
   * nothing either way).
   */
  #cancelCheck(write: Promise<unknown>): void {
    const pid = sessionOf(write);
    if (pid === undefined) return;
    this.#signal("pg_cancel_backend", pid, CHECK_SQL)
      .catch(() => {/* the statement ends when the standby returns, as before */});
  }

  #scheduleSweep(): void {
    const delay = SWEEP_PERIOD_MS * (0.5 + Math.random());
    const timer = setTimeout(async () => {
      try {
        await this.sweepExpired();
      } catch { /* the next sweep retries; reads hide expired rows regardless */ }
      if (!this.#closed) this.#scheduleSweep();
    }, delay);
    Deno.unrefTimer(timer);
    this.#sweep = timer;
  }

  /**
   * Deletes expired rows in batches; returns how many. Reads and checks hide
   * expired rows already, so this only reclaims space.
   */
  async sweepExpired(): Promise<number> {
    let total = 0;
    for (;;) {
      const r = await this.#run(() =>
        this.#sql.unsafe(
          `DELETE FROM ${KV_TABLE} WHERE key IN (
             SELECT key FROM ${KV_TABLE} WHERE expires_at <= ${NOW_MS}
             ORDER BY expires_at LIMIT ${SWEEP_BATCH} FOR UPDATE SKIP LOCKED)`,
        )
      );
      total += r.count;
      if (r.count < SWEEP_BATCH) return total;
    }
  }

  /** True if the database answers a trivial query now. */
  async ping(): Promise<boolean> {
    try {
      await this.#run(() => this.#sql`SELECT 1`);
      return true;
    } catch {
      return false;
    }
  }

  /** {@linkcode close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Waits for the requests in flight (at most {@linkcode CLOSE_WAIT_MS}),
   * then ends every connection. Not the driver's `end({timeout})` alone:
   * postgres 3.4.9 keeps a lost connection's failed statement as that
   * connection's current one (closed() in its connection.js), and end()
   * waits for it to finish, which it never does: after any connection lost
   * under a statement, close() took the whole timeout (5,002 ms measured,
   * 7 ms otherwise), and so did auth's shutdown. Once this backend's own
   * requests have settled, whatever a connection still waits for is such a
   * dead statement, or a lost-answer check's write left waiting for a
   * standby (it changes nothing): neither is worth waiting for. A second
   * call returns the first's promise: it resolves once the connections
   * are ended, not at once while the first still waits.
   */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  async #close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#sweep);
    if (this.#inFlight > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#settled = resolve;
        timer = setTimeout(resolve, CLOSE_WAIT_MS);
      });
      clearTimeout(timer);
    }
    await Promise.all([this.#sql.end({ timeout: 0 }), this.#tx.end({ timeout: 0 })]);
  }
}
