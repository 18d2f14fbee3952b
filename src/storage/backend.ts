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
  /** Opaque version, compared for equality only. */
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

/** Convenience: a single-key compare-and-swap write. */
export function setIfVersion(
  backend: Backend,
  key: Key,
  version: string | null,
  value: JsonValue,
): Promise<CommitResult> {
  return backend.commit({ checks: [{ key, version }], mutations: [{ type: "set", key, value }] });
}
