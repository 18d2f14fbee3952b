/**
 * A {@linkcode Backend} wrapper that counts the rows its callers read, so a
 * test can assert that a listing reads a page and not the whole log.
 *
 * @module
 */
import type {
  AtomicOperation,
  Backend,
  CommitResult,
  Entry,
  JsonValue,
  Key,
  ListOptions,
} from "../../src/storage/backend.ts";

/** Forwards every call to `inner`, counting the entries `get` and `list` return. */
export class CountingBackend implements Backend {
  /** Entries returned by `get` and `list` so far. */
  rowsRead = 0;

  /** @param inner the backend that stores everything */
  constructor(readonly inner: Backend) {}

  async get<T = JsonValue>(key: Key): Promise<Entry<T> | null> {
    const e = await this.inner.get<T>(key);
    if (e) this.rowsRead++;
    return e;
  }

  async list<T = JsonValue>(prefix: Key, options?: ListOptions): Promise<Entry<T>[]> {
    const entries = await this.inner.list<T>(prefix, options);
    this.rowsRead += entries.length;
    return entries;
  }

  commit(op: AtomicOperation): Promise<CommitResult> {
    return this.inner.commit(op);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
