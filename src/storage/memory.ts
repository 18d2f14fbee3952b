/**
 * An in-memory {@linkcode Backend} for unit tests and ephemeral use.
 *
 * @module
 */
import { KeyboundError } from "../errors.ts";
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
} from "./backend.ts";

interface Slot {
  value: JsonValue;
  version: number;
  expiresAt?: number;
}

const SEP = "\u0000";

/**
 * A {@linkcode Backend} held in a Map; values are deep-copied in and out.
 *
 * @example Store and read back a value
 * ```ts ignore
 * import { MemoryBackend } from "@keybound/keybound";
 *
 * const backend = new MemoryBackend();
 * await backend.commit({ checks: [], mutations: [{ type: "set", key: ["a"], value: 1 }] });
 * console.log((await backend.get(["a"]))?.value); // 1
 * ```
 */
export class MemoryBackend implements Backend {
  #data = new Map<string, Slot>();
  #counter = 0;
  #closed = false;
  #now: () => number;

  /**
   * An empty backend.
   * @param now clock in epoch milliseconds, for entry expiry
   */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  #live(k: string): Slot | undefined {
    const s = this.#data.get(k);
    if (s && s.expiresAt !== undefined && s.expiresAt <= this.#now()) {
      this.#data.delete(k);
      return undefined;
    }
    return s;
  }

  #open() {
    if (this.#closed) throw new KeyboundError("STORAGE_ERROR", "backend is closed");
  }

  get<T = JsonValue>(key: Key): Promise<Entry<T> | null> {
    this.#open();
    const s = this.#live(key.join(SEP));
    return Promise.resolve(
      s
        ? { key: [...key], value: structuredClone(s.value) as T, version: String(s.version) }
        : null,
    );
  }

  list<T = JsonValue>(prefix: Key, options: ListOptions = {}): Promise<Entry<T>[]> {
    this.#open();
    assertListAfter(prefix, options.after);
    const p = prefix.length ? prefix.join(SEP) + SEP : "";
    const dir = options.reverse ? -1 : 1;
    const after = options.after;
    const keys = [...this.#data.keys()]
      .filter((k) => k.startsWith(p))
      .map((k) => k.split(SEP))
      .filter((k) => after === undefined || dir * compareKeys(k, after) > 0)
      .sort((a, b) => dir * compareKeys(a, b));
    const out: Entry<T>[] = [];
    for (const key of keys) {
      const s = this.#live(key.join(SEP));
      if (!s) continue;
      out.push({ key, value: structuredClone(s.value) as T, version: String(s.version) });
      if (options.limit !== undefined && out.length >= options.limit) break;
    }
    return Promise.resolve(out);
  }

  commit(op: AtomicOperation): Promise<CommitResult> {
    this.#open();
    for (const c of op.checks) {
      const s = this.#live(c.key.join(SEP));
      const v = s ? String(s.version) : null;
      if (v !== c.version) return Promise.resolve({ ok: false });
    }
    const version = ++this.#counter;
    for (const m of op.mutations) {
      const k = m.key.join(SEP);
      if (m.type === "delete") this.#data.delete(k);
      else this.#data.set(k, { value: structuredClone(m.value), version, expiresAt: m.expiresAt });
    }
    return Promise.resolve({ ok: true });
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
