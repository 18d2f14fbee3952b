/**
 * {@linkcode AgentStorage} in a Deno KV database (`storage: {type: deno_kv,
 * path: ...}`): each state file is one KV entry, written atomically. Needs
 * `--unstable-kv`.
 *
 * Locking: a lease entry (owner and expiry) taken with an atomic check,
 * renewed while held and deleted on release. A crashed agent's lease lapses
 * after {@linkcode LOCK_LEASE_MS}, so a restart waits at most that long.
 *
 * Deno KV stores values in a SQLite file readable by anyone who can read
 * the file: it and its `-wal`/`-shm` companions are made 0600 whatever the
 * umask, a missing parent directory is created 0700, and keys can be sealed
 * with a KEK (src/agent/sealed_keys.ts) where that is not enough.
 *
 * @module
 */
import { KeyboundError } from "../../src/errors.ts";
import type { AgentStorage, ReleaseLock } from "../../src/agent/storage.ts";
import { randomHex } from "../../src/crypto/random.ts";
import { utf8 } from "../../src/util/encoding.ts";
import { dirname } from "node:path";
import { ensureDir, openPrivateKv } from "./fs.ts";

/** How long a lock lease lasts without renewal. */
export const LOCK_LEASE_MS = 30_000;
/** The default key prefix of the bot's entries. */
export const DEFAULT_KV_PREFIX: readonly string[] = ["tbot"];
/** Largest file Deno KV can hold in one value. */
const MAX_VALUE_BYTES = 65_536;

interface Lease {
  owner: string;
  expires_at: number;
}

function checkName(name: string): void {
  if (!name || name.includes("/")) {
    throw new KeyboundError("BAD_PARAMETER", `invalid storage file name "${name}"`);
  }
}

/** Bot state files in Deno KV. */
export class DenoKvAgentStorage implements AgentStorage {
  readonly persistent: boolean;
  #kv: Deno.Kv;
  #path: string;
  #prefix: string[];
  #leaseTimers = new Set<ReturnType<typeof setInterval>>();

  private constructor(kv: Deno.Kv, path: string, prefix: string[]) {
    this.#kv = kv;
    this.#path = path;
    this.#prefix = prefix;
    this.persistent = path !== ":memory:";
  }

  /**
   * Opens (or creates) the database at `path` (`:memory:` for a throwaway
   * one). Entries live under `prefix`, so several bots can share a file.
   */
  static async open(
    path: string,
    prefix: readonly string[] = DEFAULT_KV_PREFIX,
  ): Promise<DenoKvAgentStorage> {
    try {
      if (path !== ":memory:") await ensureDir(dirname(path), 0o700);
      return new DenoKvAgentStorage(await openPrivateKv(path), path, [...prefix]);
    } catch (cause) {
      throw new KeyboundError("STORAGE_ERROR", `cannot open the Deno KV database "${path}"`, {
        cause,
      });
    }
  }

  describe(): string {
    return `Deno KV database ${this.#path}`;
  }

  init(): Promise<void> {
    return Promise.resolve();
  }

  #fileKey(name: string): Deno.KvKey {
    checkName(name);
    return [...this.#prefix, "files", name];
  }

  async read(name: string): Promise<Uint8Array | null> {
    const e = await this.#kv.get<Uint8Array>(this.#fileKey(name));
    return e.value === null ? null : new Uint8Array(e.value);
  }

  async write(name: string, data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === "string" ? utf8(data) : new Uint8Array(data);
    if (bytes.length > MAX_VALUE_BYTES) {
      throw new KeyboundError(
        "STORAGE_ERROR",
        `file "${name}" is ${bytes.length} bytes; ${this.describe()} holds at most ${MAX_VALUE_BYTES}`,
      );
    }
    await this.#kv.set(this.#fileKey(name), bytes);
  }

  async delete(name: string): Promise<void> {
    await this.#kv.delete(this.#fileKey(name));
  }

  async list(): Promise<string[]> {
    const names: string[] = [];
    for await (const e of this.#kv.list({ prefix: [...this.#prefix, "files"] })) {
      names.push(String(e.key[e.key.length - 1]));
    }
    return names.sort();
  }

  async tryLock(): Promise<ReleaseLock> {
    const key = [...this.#prefix, "lock"];
    const owner = randomHex(16);
    const current = await this.#kv.get<Lease>(key);
    const now = Date.now();
    if (current.value && current.value.expires_at > now) {
      throw new KeyboundError(
        "STORAGE_ERROR",
        `${this.describe()} is in use by another agent (its lock lease runs until ${
          new Date(current.value.expires_at).toISOString()
        }; a crashed agent's lease lapses within ${LOCK_LEASE_MS / 1000}s)`,
      );
    }
    const taken = await this.#kv.atomic().check(current)
      .set(key, { owner, expires_at: now + LOCK_LEASE_MS } satisfies Lease).commit();
    if (!taken.ok) {
      throw new KeyboundError("STORAGE_ERROR", `${this.describe()} is in use by another agent`);
    }
    const renew = setInterval(() => {
      this.#renewLease(key, owner).catch(() => {});
    }, LOCK_LEASE_MS / 3);
    Deno.unrefTimer(renew);
    this.#leaseTimers.add(renew);
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      clearInterval(renew);
      this.#leaseTimers.delete(renew);
      const e = await this.#kv.get<Lease>(key);
      if (e.value?.owner === owner) await this.#kv.atomic().check(e).delete(key).commit();
    };
  }

  async #renewLease(key: Deno.KvKey, owner: string): Promise<void> {
    const e = await this.#kv.get<Lease>(key);
    if (e.value?.owner !== owner) return;
    await this.#kv.atomic().check(e)
      .set(key, { owner, expires_at: Date.now() + LOCK_LEASE_MS } satisfies Lease).commit();
  }

  /** Closes the database; the storage is unusable afterwards. */
  close(): void {
    for (const t of this.#leaseTimers) clearInterval(t);
    this.#leaseTimers.clear();
    this.#kv.close();
  }
}
