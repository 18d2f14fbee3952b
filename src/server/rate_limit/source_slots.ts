/**
 * Slots held per source (as {@linkcode sourceAddress} names it: an IPv4
 * address or an IPv6 /64), oldest first: what the public front counts its
 * connections with, both those being set up and all those it holds, so that
 * one source's share is capped and, when the total is reached, the source
 * holding the most is the one that gives a slot back.
 *
 * @module
 */

/** Items (connections) per source, in the order they were added. */
export class SourceSlots<T> {
  #bySource = new Map<string, Set<T>>();
  #sourceOf = new Map<T, string>();

  /** Slots held in all. */
  get size(): number {
    return this.#sourceOf.size;
  }

  /** Slots `source` holds. */
  count(source: string): number {
    return this.#bySource.get(source)?.size ?? 0;
  }

  /** Whether `item` holds a slot. */
  has(item: T): boolean {
    return this.#sourceOf.has(item);
  }

  /** Gives `item` a slot of `source` (it must hold none). */
  add(item: T, source: string): void {
    let set = this.#bySource.get(source);
    if (!set) this.#bySource.set(source, set = new Set());
    set.add(item);
    this.#sourceOf.set(item, source);
  }

  /** Frees `item`'s slot; false if it held none. */
  delete(item: T): boolean {
    const source = this.#sourceOf.get(item);
    if (source === undefined) return false;
    this.#sourceOf.delete(item);
    const set = this.#bySource.get(source)!;
    set.delete(item);
    if (!set.size) this.#bySource.delete(source);
    return true;
  }

  /** Every item holding a slot. */
  items(): IterableIterator<T> {
    return this.#sourceOf.keys();
  }

  /**
   * The oldest item of the source holding the most slots (the first such
   * source found on a tie), and that source; undefined when none is held.
   */
  oldestOfLargest(): { item: T; source: string } | undefined {
    let most: [string, Set<T>] | undefined;
    for (const entry of this.#bySource) if (!most || entry[1].size > most[1].size) most = entry;
    if (!most) return undefined;
    return { item: most[1].values().next().value!, source: most[0] };
  }
}
