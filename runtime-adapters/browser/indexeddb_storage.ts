/**
 * Agent storage on IndexedDB, for a bot running in a browser page. Files
 * (join state, certificates, key references) are byte values in one object
 * store; private keys are `CryptoKey` objects in another, stored by
 * structured clone as themselves: generated non-extractable, never exported,
 * never serialized by script (see src/agent/stored_keys.ts). The browser
 * still writes their bytes into the profile directory on disk; see
 * docs/browser.md.
 *
 * IndexedDB is per origin, port included: serve the bot page from one fixed
 * origin, or it finds an empty database.
 *
 * @module
 */
import { KeyboundError } from "../../src/errors.ts";
import type { KeyPair } from "../../src/crypto/keys.ts";
import type { AgentStorage, ReleaseLock } from "../../src/agent/storage.ts";
import type { KeyObjectStore } from "../../src/agent/stored_keys.ts";
import { browser, type IdbDatabase, type IdbRequest } from "./web_types.ts";

const FILES = "files";
const KEYS = "keys";
const DB_VERSION = 1;

function requestDone<T>(request: IdbRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function storageError(what: string, cause: unknown): KeyboundError {
  return new KeyboundError(
    "STORAGE_ERROR",
    `${what}: ${(cause as Error)?.message ?? cause}`,
    { cause },
  );
}

function isKeyPair(v: unknown): v is KeyPair {
  const kp = v as KeyPair | null;
  return kp !== null && typeof kp === "object" && kp.privateKey instanceof CryptoKey &&
    kp.publicKey instanceof CryptoKey && (kp.alg === "EdDSA" || kp.alg === "ES256");
}

/** An {@linkcode AgentStorage} in the IndexedDB database `name` of this page's origin. */
export class IndexedDbAgentStorage implements AgentStorage {
  readonly persistent = true;
  readonly keyObjects: KeyObjectStore;
  #name: string;
  #db: Promise<IdbDatabase> | null = null;

  /** @param name the database name (one per bot on an origin) */
  constructor(name = "keybound-bot") {
    this.#name = name;
    this.keyObjects = {
      put: (id, keyPair) => this.#put(KEYS, id, keyPair),
      get: async (id) => {
        const v = await this.#get(KEYS, id);
        if (v === undefined) return null;
        if (!isKeyPair(v)) {
          throw storageError(`key object ${id} in ${this.describe()}`, "not a key pair");
        }
        return v;
      },
      ids: async () => (await this.#keys(KEYS)).map(String),
      delete: (id) => this.#put(KEYS, id, null),
    };
  }

  describe(): string {
    return `IndexedDB database "${this.#name}" of ${globalThis.location?.origin ?? "this origin"}`;
  }

  async init(): Promise<void> {
    await this.#open();
  }

  #open(): Promise<IdbDatabase> {
    this.#db ??= new Promise<IdbDatabase>((resolve, reject) => {
      const req = browser().indexedDB.open(this.#name, DB_VERSION);
      req.onupgradeneeded = () => {
        req.result.createObjectStore(FILES);
        req.result.createObjectStore(KEYS);
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(storageError(`cannot open ${this.describe()}`, req.error));
      req.onblocked = () => reject(storageError(`cannot open ${this.describe()}`, "blocked"));
    }).catch((e) => {
      this.#db = null;
      throw e;
    });
    return this.#db;
  }

  async #get(store: string, key: string): Promise<unknown> {
    const db = await this.#open();
    try {
      return await requestDone(db.transaction(store, "readonly").objectStore(store).get(key));
    } catch (e) {
      throw storageError(`cannot read "${key}" from ${this.describe()}`, e);
    }
  }

  /** One transaction per write, resolved once it commits with strict durability. */
  async #put(store: string, key: string, value: unknown | null): Promise<void> {
    const db = await this.#open();
    await new Promise<void>((resolve, reject) => {
      const tx = db.transaction(store, "readwrite", { durability: "strict" });
      const os = tx.objectStore(store);
      if (value === null) os.delete(key);
      else os.put(value, key);
      tx.oncomplete = () => resolve();
      tx.onabort = tx.onerror = () =>
        reject(storageError(`cannot write "${key}" to ${this.describe()}`, tx.error));
    });
  }

  async read(name: string): Promise<Uint8Array | null> {
    const v = await this.#get(FILES, name);
    if (v === undefined) return null;
    if (!(v instanceof Uint8Array)) {
      throw storageError(`file "${name}" in ${this.describe()}`, "not bytes");
    }
    return v;
  }

  write(name: string, data: Uint8Array | string): Promise<void> {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data);
    return this.#put(FILES, name, bytes);
  }

  delete(name: string): Promise<void> {
    return this.#put(FILES, name, null);
  }

  async list(): Promise<string[]> {
    return (await this.#keys(FILES)).map(String).sort();
  }

  async #keys(store: string): Promise<unknown[]> {
    const db = await this.#open();
    try {
      return await requestDone(db.transaction(store, "readonly").objectStore(store).getAllKeys());
    } catch (e) {
      throw storageError(`cannot list ${this.describe()}`, e);
    }
  }

  /**
   * Takes a Web Lock named after the database, so a second tab (or worker)
   * on the same origin cannot run the same bot at the same time.
   */
  tryLock(): Promise<ReleaseLock> {
    return new Promise((resolve, reject) => {
      browser().navigator.locks.request(`keybound:${this.#name}`, { ifAvailable: true }, (lock) => {
        if (!lock) {
          reject(
            new KeyboundError(
              "STORAGE_ERROR",
              `${this.describe()} is in use by another tab or worker of this origin`,
            ),
          );
          return;
        }
        // Held until released.
        return new Promise<void>((release) =>
          resolve(() => {
            release();
            return Promise.resolve();
          })
        );
      }).catch(reject);
    });
  }
}
