/**
 * A size-bounded map that forgets its least recently used entry first, for
 * in-process caches that must not grow with what clients send.
 *
 * @module
 */

/**
 * A `Map` with at most `maxEntries` entries. A `Map` iterates in insertion
 * order, so re-inserting on every hit keeps the least recently used entry
 * first, where eviction takes it.
 *
 * @example
 * ```ts
 * import { LruMap } from "./lru.ts";
 *
 * const m = new LruMap<string, number>(2);
 * m.set("a", 1);
 * m.set("b", 2);
 * m.get("a"); // a is now the most recently used
 * m.set("c", 3); // evicts b
 * console.log(m.get("b")); // undefined
 * ```
 */
export class LruMap<K, V> {
  #entries = new Map<K, V>();

  /** @param maxEntries upper bound on entries (at least 1) */
  constructor(readonly maxEntries: number) {}

  /** The value for `key`, marked most recently used; undefined if absent. */
  get(key: K): V | undefined {
    if (!this.#entries.has(key)) return undefined;
    const v = this.#entries.get(key)!;
    this.#entries.delete(key);
    this.#entries.set(key, v);
    return v;
  }

  /** The value for `key` without marking it used; undefined if absent. */
  peek(key: K): V | undefined {
    return this.#entries.get(key);
  }

  /** Sets `key`, evicting the least recently used entries beyond the bound. */
  set(key: K, value: V): void {
    this.#entries.delete(key);
    while (this.#entries.size >= Math.max(1, this.maxEntries)) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#entries.set(key, value);
  }

  /** Removes `key`; true if it was present. */
  delete(key: K): boolean {
    return this.#entries.delete(key);
  }

  /** Number of entries. */
  get size(): number {
    return this.#entries.size;
  }
}
