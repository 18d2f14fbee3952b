/**
 * {@linkcode AgentStorage} in a Durable Object's storage: the bot's state
 * files as key-value entries under a prefix. Each `put` is atomic on its own,
 * and `writeGroup` writes and deletes several files in one atomic step (the
 * platform commits writes issued with no `await` between them together), so a
 * renewal's group write needs no journal (src/agent/journal.ts).
 *
 * Waking the object reads about a dozen of these files one after another;
 * {@linkcode DoAgentStorage.preload} reads them all in one storage call
 * instead and serves those reads from that copy.
 *
 * Locking: the platform runs at most one instance of a Durable Object at a
 * time, so the exclusive lock only has to stop two users inside that
 * instance; it is held in memory and dies with the instance, so an evicted
 * object never leaves a stale lock behind.
 *
 * @module
 */
import { KeyboundError } from "../../src/errors.ts";
import type { AgentStorage, ReleaseLock } from "../../src/agent/storage.ts";
import { utf8 } from "../../src/util/encoding.ts";
import type { DurableObjectStorage } from "./types.ts";

/** The default key prefix of the bot's files. */
export const DEFAULT_AGENT_PREFIX = "agent/";

// Lock holders per storage object (one per object instance) and prefix.
const held = new WeakMap<DurableObjectStorage, Set<string>>();

function checkName(name: string): void {
  if (!name || name.includes("/")) {
    throw new KeyboundError("BAD_PARAMETER", `invalid storage file name "${name}"`);
  }
}

/** Bot state files in Durable Object storage. */
export class DoAgentStorage implements AgentStorage {
  readonly persistent = true;
  #storage: DurableObjectStorage;
  #prefix: string;
  /** Every file as one `list` read it (name → bytes), until a write or `release`; else null. */
  #copy: Map<string, Uint8Array> | null = null;
  /**
   * Writes and deletes issued so far: a `preload` whose read overlapped one
   * keeps no copy, since its snapshot may be older than that change.
   */
  #changes = 0;

  /**
   * @param storage the object's `ctx.storage`
   * @param prefix key prefix separating this bot's files from other data
   */
  constructor(storage: DurableObjectStorage, prefix: string = DEFAULT_AGENT_PREFIX) {
    this.#storage = storage;
    this.#prefix = prefix;
  }

  describe(): string {
    return `Durable Object storage (prefix "${this.#prefix}")`;
  }

  init(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Reads every file in one storage call and answers reads from that copy
   * until the returned function is called or this storage writes or deletes
   * anything (each drops the copy; one issued while the read runs means no
   * copy is kept). Only this object's instance writes its
   * storage, so the copy is what a read would return; call it where nothing
   * else can run meanwhile (the object's constructor, inside
   * `blockConcurrencyWhile`) and release it when done.
   */
  async preload(): Promise<() => void> {
    const changes = this.#changes;
    const entries = await this.#storage.list<Uint8Array>({ prefix: this.#prefix });
    const copy = new Map<string, Uint8Array>();
    for (const [key, value] of entries) copy.set(key.slice(this.#prefix.length), value);
    // A change issued while `list` ran already dropped the copy there was; keeping this
    // one would hide it. Reads then go to storage, which has it.
    if (this.#changes === changes) this.#copy = copy;
    return () => {
      if (this.#copy === copy) this.#copy = null;
    };
  }

  async read(name: string): Promise<Uint8Array | null> {
    checkName(name);
    const v = this.#copy
      ? this.#copy.get(name)
      : await this.#storage.get<Uint8Array>(this.#prefix + name);
    return v === undefined ? null : new Uint8Array(v);
  }

  async write(name: string, data: Uint8Array | string): Promise<void> {
    checkName(name);
    this.#dropCopy();
    const bytes = typeof data === "string" ? utf8(data) : new Uint8Array(data);
    await this.#storage.put({ [this.#prefix + name]: bytes });
  }

  async delete(name: string): Promise<void> {
    checkName(name);
    this.#dropCopy();
    await this.#storage.delete([this.#prefix + name]);
  }

  readonly writeGroup = async (files: Record<string, Uint8Array | string | null>) => {
    this.#dropCopy();
    const puts: Record<string, Uint8Array> = {};
    const deletes: string[] = [];
    for (const [name, data] of Object.entries(files)) {
      checkName(name);
      if (data === null) deletes.push(this.#prefix + name);
      else puts[this.#prefix + name] = typeof data === "string" ? utf8(data) : new Uint8Array(data);
    }
    // Both issued before either is awaited: one atomic commit.
    await Promise.all([
      Object.keys(puts).length > 0 ? this.#storage.put(puts) : undefined,
      deletes.length > 0 ? this.#storage.delete(deletes) : undefined,
    ]);
  };

  /** Before any change is issued: the copy no longer matches storage. */
  #dropCopy(): void {
    this.#changes++;
    this.#copy = null;
  }

  async list(): Promise<string[]> {
    const entries = await this.#storage.list({ prefix: this.#prefix });
    return [...entries.keys()].map((k) => k.slice(this.#prefix.length)).sort();
  }

  tryLock(): Promise<ReleaseLock> {
    let prefixes = held.get(this.#storage);
    if (!prefixes) held.set(this.#storage, prefixes = new Set());
    if (prefixes.has(this.#prefix)) {
      return Promise.reject(
        new KeyboundError("STORAGE_ERROR", `${this.describe()} is in use by another agent`),
      );
    }
    prefixes.add(this.#prefix);
    let released = false;
    return Promise.resolve(() => {
      if (!released) prefixes.delete(this.#prefix);
      released = true;
      return Promise.resolve();
    });
  }
}
