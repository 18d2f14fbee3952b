/**
 * {@linkcode Backend} on Deno KV: the embedded default of the auth service.
 * Needs `--unstable-kv`.
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

/** Attempts of a commit that keeps finding the database locked by another connection. */
const LOCKED_RETRIES = 20;

function isDatabaseLocked(err: unknown): boolean {
  return err instanceof Error && /database is locked/i.test(err.message);
}

/** A {@linkcode Backend} stored in a Deno KV database. */
export class DenoKvBackend implements Backend {
  #kv: Deno.Kv;

  private constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** Opens (or creates) the KV database at `path`; omit for in-memory. */
  static async open(path?: string): Promise<DenoKvBackend> {
    return new DenoKvBackend(await Deno.openKv(path ?? ":memory:"));
  }

  async get<T = JsonValue>(key: Key): Promise<Entry<T> | null> {
    const e = await this.#kv.get<T>(key as string[]);
    return e.versionstamp === null
      ? null
      : { key: [...key], value: e.value, version: e.versionstamp };
  }

  async list<T = JsonValue>(prefix: Key, options: ListOptions = {}): Promise<Entry<T>[]> {
    const out: Entry<T>[] = [];
    const iter = this.#kv.list<T>({ prefix: prefix as string[] }, {
      limit: options.limit,
      reverse: options.reverse,
    });
    for await (const e of iter) {
      out.push({ key: e.key as string[], value: e.value, version: e.versionstamp });
    }
    return out;
  }

  async commit(op: AtomicOperation): Promise<CommitResult> {
    // Another connection writing to the same file (a second auth process) makes
    // SQLite answer "database is locked"; such a commit did not apply, so retry it.
    for (let attempt = 1;; attempt++) {
      try {
        return await this.#commitOnce(op);
      } catch (err) {
        if (!isDatabaseLocked(err) || attempt >= LOCKED_RETRIES) throw err;
        await new Promise((r) => setTimeout(r, attempt * 10 + Math.random() * 10));
      }
    }
  }

  async #commitOnce(op: AtomicOperation): Promise<CommitResult> {
    const a = this.#kv.atomic();
    for (const c of op.checks) a.check({ key: c.key as string[], versionstamp: c.version });
    for (const m of op.mutations) {
      if (m.type === "delete") a.delete(m.key as string[]);
      else {
        const expireIn = m.expiresAt === undefined
          ? undefined
          : Math.max(1, m.expiresAt - Date.now());
        a.set(m.key as string[], m.value, expireIn === undefined ? undefined : { expireIn });
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
