/**
 * {@linkcode Backend} on Deno KV: the embedded default of the auth service.
 * Needs `--unstable-kv`.
 *
 * @module
 */
import {
  assertListAfter,
  type AtomicOperation,
  type Backend,
  type CommitResult,
  compareKeys,
  type Entry,
  type JsonValue,
  type Key,
  type ListOptions,
} from "../../src/storage/backend.ts";
import { inContext, KeyboundError } from "../../src/errors.ts";
import { isDatabaseLocked, openPrivateKv, retryWhileLocked } from "./fs.ts";

/**
 * Deno KV deletes expired entries lazily, so an entry written with an expiry
 * is stored wrapped with its deadline and hidden once the deadline passes.
 */
const EXPIRES = "__keybound_expires_at";

interface Wrapped {
  [EXPIRES]: number;
  value: unknown;
}

function isWrapped(v: unknown): v is Wrapped {
  return typeof v === "object" && v !== null && typeof (v as Wrapped)[EXPIRES] === "number";
}

/** The stored value, or undefined when its deadline has passed. */
function unwrap(v: unknown, now: number): { value: unknown } | undefined {
  if (!isWrapped(v)) return { value: v };
  return v[EXPIRES] <= now ? undefined : { value: v.value };
}

/** A key no Keybound code writes: the check of commits that check nothing. */
const NEVER_WRITTEN: Deno.KvKey = ["__keybound_never_written"];

/** Most keys one `getMany` of Deno KV takes. */
const GET_MANY_MAX = 10;

/** A point read waiting for the batch of its turn. */
interface PendingGet {
  key: Deno.KvKey;
  resolve(e: Deno.KvEntryMaybe<unknown>): void;
  reject(err: unknown): void;
}

/**
 * A {@linkcode Backend} stored in a Deno KV database.
 *
 * Point reads issued in the same turn of the event loop (a join's
 * `Promise.all` of the token, bot, instance, lock marker and used-marker)
 * go to KV as one `getMany`: each KV call is a handoff to its thread, and
 * one read of five keys costs about half the CPU of five reads (and is one
 * consistent snapshot, which separate reads are not).
 */
export class DenoKvBackend implements Backend {
  #kv: Deno.Kv;
  #pending: PendingGet[] = [];

  private constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** Opens (or creates) the KV database at `path`, 0600 with its companions; omit for in-memory. */
  static async open(path = ":memory:"): Promise<DenoKvBackend> {
    try {
      return new DenoKvBackend(await openPrivateKv(path));
    } catch (err) {
      throw inContext(`cannot open the Deno KV database "${path}"`, err, "STORAGE_ERROR");
    }
  }

  async get<T = JsonValue>(key: Key): Promise<Entry<T> | null> {
    const e = await new Promise<Deno.KvEntryMaybe<unknown>>((resolve, reject) => {
      if (this.#pending.length === 0) queueMicrotask(() => this.#readPending());
      this.#pending.push({ key: key as string[], resolve, reject });
    });
    const live = e.versionstamp === null ? undefined : unwrap(e.value, Date.now());
    return live === undefined
      ? null
      : { key: [...key], value: live.value as T, version: e.versionstamp! };
  }

  /** Reads every point read of this turn, at most {@linkcode GET_MANY_MAX} keys per call. */
  #readPending(): void {
    const pending = this.#pending;
    this.#pending = [];
    for (let i = 0; i < pending.length; i += GET_MANY_MAX) {
      const batch = pending.slice(i, i + GET_MANY_MAX);
      let read: Promise<Deno.KvEntryMaybe<unknown>[]>;
      try {
        read = this.#kv.getMany(batch.map((p) => p.key));
      } catch (err) {
        read = Promise.reject(err);
      }
      read.then(
        (entries) => batch.forEach((p, j) => p.resolve(entries[j])),
        // One bad key must not fail its neighbours: each is read alone and
        // gets its own answer.
        () => {
          for (const p of batch) {
            try {
              this.#kv.get(p.key).then(p.resolve, p.reject);
            } catch (err) {
              p.reject(err);
            }
          }
        },
      );
    }
  }

  async list<T = JsonValue>(prefix: Key, options: ListOptions = {}): Promise<Entry<T>[]> {
    assertListAfter(prefix, options.after);
    const out: Entry<T>[] = [];
    const after = options.after as string[] | undefined;
    // KV's `start` is inclusive (the cursor key itself is skipped below) and
    // its `end` exclusive, which is exactly "strictly before" for reverse.
    const selector: Deno.KvListSelector = after === undefined
      ? { prefix: prefix as string[] }
      : options.reverse
      ? { prefix: prefix as string[], end: after }
      : { prefix: prefix as string[], start: after };
    // A small page reads a small batch: KV would otherwise fetch 100 rows.
    const batchSize = options.limit === undefined ? undefined : Math.min(options.limit + 1, 500);
    const iter = this.#kv.list(selector, { reverse: options.reverse, batchSize });
    const now = Date.now();
    for await (const e of iter) {
      if (after !== undefined && compareKeys(e.key as string[], after) === 0) continue;
      const live = unwrap(e.value, now);
      if (live === undefined) continue;
      out.push({ key: e.key as string[], value: live.value as T, version: e.versionstamp });
      if (options.limit !== undefined && out.length >= options.limit) break;
    }
    return out;
  }

  async commit(op: AtomicOperation): Promise<CommitResult> {
    // Another connection writing to the same file (a second auth process) makes
    // SQLite answer "database is locked"; such a commit did not apply, so retry it.
    try {
      return await retryWhileLocked(async () => {
        const r = await this.#commitOnce(op);
        if (r.ok) return r;
        // An absent-check fails on an expired entry KV has not deleted yet; check
        // against that entry's real version instead, which is still atomic.
        const retry = await this.#expiredAsAbsent(op);
        return retry ? await this.#commitOnce(retry) : r;
      });
    } catch (err) {
      // Still locked after the retries: a process outside Keybound holds the
      // file's write lock (an sqlite3 shell in a transaction, a copying tool).
      // Nothing was applied, so the caller may retry: the code says so
      // instead of an internal error.
      if (!isDatabaseLocked(err)) throw err;
      throw new KeyboundError(
        "BACKEND_UNAVAILABLE",
        "storage is locked by another process (the Deno KV file's write lock); retry",
        { cause: err },
      );
    }
  }

  async #expiredAsAbsent(op: AtomicOperation): Promise<AtomicOperation | null> {
    const now = Date.now();
    let changed = false;
    const checks = await Promise.all(op.checks.map(async (c) => {
      if (c.version !== null) return c;
      const e = await this.#kv.get(c.key as string[]);
      if (e.versionstamp === null || unwrap(e.value, now) !== undefined) return c;
      changed = true;
      return { key: c.key, version: e.versionstamp };
    }));
    return changed ? { checks, mutations: op.mutations } : null;
  }

  async #commitOnce(op: AtomicOperation): Promise<CommitResult> {
    const a = this.#kv.atomic();
    for (const c of op.checks) a.check({ key: c.key as string[], versionstamp: c.version });
    // A commit without checks waits for another process's write lock without
    // limit, and KV's writes queue behind it (audit events are such commits):
    // an absent-check on a key nothing writes makes SQLite refuse it at once
    // instead, like every checked commit, so the retries above bound it.
    if (op.checks.length === 0) a.check({ key: NEVER_WRITTEN, versionstamp: null });
    for (const m of op.mutations) {
      if (m.type === "delete") a.delete(m.key as string[]);
      else {
        if (m.expiresAt === undefined) {
          a.set(m.key as string[], m.value);
        } else {
          const wrapped: Wrapped = { [EXPIRES]: m.expiresAt, value: m.value };
          a.set(m.key as string[], wrapped, { expireIn: Math.max(1, m.expiresAt - Date.now()) });
        }
      }
    }
    const r = await a.commit();
    return { ok: r.ok };
  }

  close(): Promise<void> {
    this.#kv.close();
    return Promise.resolve();
  }
}
