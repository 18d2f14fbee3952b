/**
 * The server's storage interface: a small ordered key-value store with one
 * atomic compare-and-swap commit. Deno KV, Durable Objects and memory all
 * implement it; nothing runtime-specific leaks through.
 *
 * Values are plain JSON (no CryptoKeys, no Dates, no typed arrays) so every
 * backend can hold them: workerd cannot serialize a CryptoKey at all.
 *
 * @module
 */

/** A key: an ordered tuple of strings, compared part by part. */
export type Key = readonly string[];

/** A JSON value. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [k: string]: JsonValue | undefined };

/** A stored entry; `version` changes on every write of the key. */
export interface Entry<T = JsonValue> {
  /** The key. */
  key: Key;
  /** The value. */
  value: T;
  /**
   * Opaque version, compared for equality only: no order, no format (one
   * backend's versions may differ in shape, as the Durable Object's counter
   * versions from before its UUIDs do). A version is never handed out again
   * with other content, not even after the store is restored under running
   * servers, because caches (the lock set, the CAs) and compare-and-swap
   * trust a version they saw: a backend whose store can be restored that way
   * (PostgreSQL, a Durable Object's point-in-time recovery) draws a random
   * version per commit instead of counting commits in the store. Deno KV's
   * versionstamps and memory's counter belong to one process's store, which
   * is only restored with that process stopped.
   */
  version: string;
}

/** Expect `key` to be at `version`, or absent when `version` is null. */
export interface Check {
  /** The key to check. */
  key: Key;
  /** Expected version, or null for "must not exist". */
  version: string | null;
}

/** One write in an atomic commit. */
export type Mutation =
  | {
    /** Write a value. */
    type: "set";
    /** The key. */
    key: Key;
    /** The value. */
    value: JsonValue;
    /**
     * Epoch milliseconds after which the entry reads as absent, to `get`,
     * `list` and checks alike (every backend enforces this exactly).
     */
    expiresAt?: number;
  }
  | {
    /** Remove a value. */
    type: "delete";
    /** The key. */
    key: Key;
  };

/** An atomic compare-and-swap: all checks hold and all mutations apply, or nothing does. */
export interface AtomicOperation {
  /** Preconditions. */
  checks: Check[];
  /** Writes applied together if every check holds. */
  mutations: Mutation[];
}

/** Result of {@linkcode Backend.commit}. */
export type CommitResult = { ok: true } | { ok: false };

/** Options for {@linkcode Backend.list}. */
export interface ListOptions {
  /** Maximum entries returned. */
  limit?: number;
  /** Newest (highest key) first. */
  reverse?: boolean;
  /**
   * A cursor: continue strictly after this key in the listing direction (keys
   * greater than it, or less than it with `reverse`). Passing the last key of
   * one page yields the next page. It must lie strictly under the prefix
   * (see {@linkcode assertListAfter}); it need not exist.
   */
  after?: Key;
}

/**
 * Orders keys part by part, each part by its UTF-8 bytes (the order of Deno
 * KV and of the SQL encodings); a key sorts before its extensions.
 */
export function compareKeys(a: Key, b: Key): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareUtf8(a[i], b[i]);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

const UTF8 = new TextEncoder();

function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  const x = UTF8.encode(a);
  const y = UTF8.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** True when `key` extends `prefix` by at least one part. */
export function isStrictlyUnder(key: Key, prefix: Key): boolean {
  return key.length > prefix.length && prefix.every((p, i) => key[i] === p);
}

/**
 * Throws a TypeError unless `after` is a key strictly under `prefix`: every
 * backend refuses a cursor from outside the listing the same way.
 */
export function assertListAfter(prefix: Key, after: Key | undefined): void {
  if (after === undefined) return;
  if (!Array.isArray(after) || !after.every((p) => typeof p === "string")) {
    throw new TypeError("list after must be an array of strings");
  }
  if (!isStrictlyUnder(after, prefix)) {
    throw new TypeError("list after must be a key strictly under the listed prefix");
  }
}

/** The storage interface the auth service needs. */
export interface Backend {
  /** Reads one key; expired entries read as absent. */
  get<T = JsonValue>(key: Key): Promise<Entry<T> | null>;
  /** Lists entries whose key starts with `prefix`, in key order. */
  list<T = JsonValue>(prefix: Key, options?: ListOptions): Promise<Entry<T>[]>;
  /** Applies an {@linkcode AtomicOperation}. */
  commit(op: AtomicOperation): Promise<CommitResult>;
  /** Releases resources; later calls fail. */
  close(): Promise<void>;
}

/** Rows one backend call reads in {@linkcode listInPages}. */
export const LIST_PAGE = 1000;

/**
 * Every entry under `prefix`, read {@linkcode LIST_PAGE} rows per backend
 * call, for the few sets that must be seen whole (the lock set, a count).
 * Each call stays bounded; listings a client pages through use `list` with
 * `limit` and `after` instead.
 */
export async function* listInPages<T = JsonValue>(
  backend: Backend,
  prefix: Key,
): AsyncGenerator<Entry<T>> {
  let after: Key | undefined;
  for (;;) {
    const page = await backend.list<T>(prefix, { limit: LIST_PAGE, after });
    yield* page;
    if (page.length < LIST_PAGE) return;
    after = page[page.length - 1].key;
  }
}
