/**
 * The few browser APIs the browser adapter uses that Deno's type library
 * lacks (IndexedDB, Web Locks, the DOM), typed locally. Referencing the
 * whole DOM library instead would change the types of every Deno module
 * type-checked alongside.
 *
 * @module
 */

/** An IndexedDB request. */
export interface IdbRequest<T> {
  /** The result once `onsuccess` fires. */
  readonly result: T;
  /** The error once `onerror` fires. */
  readonly error: unknown;
  /** Success handler. */
  onsuccess: (() => void) | null;
  /** Failure handler. */
  onerror: (() => void) | null;
}

/** An IndexedDB open request. */
export interface IdbOpenRequest extends IdbRequest<IdbDatabase> {
  /** Schema upgrade handler. */
  onupgradeneeded: (() => void) | null;
  /** Another connection blocks the upgrade. */
  onblocked: (() => void) | null;
}

/** An IndexedDB object store. */
export interface IdbObjectStore {
  /** Reads a value. */
  get(key: string): IdbRequest<unknown>;
  /** Every key. */
  getAllKeys(): IdbRequest<unknown[]>;
  /** Writes a value (structured clone). */
  put(value: unknown, key: string): IdbRequest<unknown>;
  /** Removes a value. */
  delete(key: string): IdbRequest<unknown>;
}

/** An IndexedDB transaction. */
export interface IdbTransaction {
  /** One of the transaction's stores. */
  objectStore(name: string): IdbObjectStore;
  /** Why it failed. */
  readonly error: unknown;
  /** Committed. */
  oncomplete: (() => void) | null;
  /** Aborted. */
  onabort: (() => void) | null;
  /** Failed. */
  onerror: (() => void) | null;
}

/** An open IndexedDB database. */
export interface IdbDatabase {
  /** Starts a transaction. */
  transaction(
    stores: string | string[],
    mode: "readonly" | "readwrite",
    options?: { durability?: "strict" | "relaxed" | "default" },
  ): IdbTransaction;
  /** Creates a store (during an upgrade). */
  createObjectStore(name: string): IdbObjectStore;
  /** Closes the connection. */
  close(): void;
}

/** `indexedDB`. */
export interface IdbFactory {
  /** Opens (or creates) a database. */
  open(name: string, version: number): IdbOpenRequest;
}

/** `navigator.locks` (Web Locks). */
export interface LockManager {
  /** Runs `callback` holding the lock, or with null if `ifAvailable` and it is taken. */
  request(
    name: string,
    options: { ifAvailable: boolean },
    callback: (lock: unknown) => Promise<void> | void,
  ): Promise<unknown>;
}

/** A DOM element, as far as the example page uses one. */
export interface PageElement {
  /** Its text. */
  textContent: string | null;
  /** `data-*` attributes. */
  readonly dataset: Record<string, string | undefined>;
  /** Appends text. */
  append(text: string): void;
}

/** The browser globals used here. */
export interface BrowserGlobals {
  /** IndexedDB. */
  indexedDB: IdbFactory;
  /** Navigator with Web Locks. */
  navigator: { locks: LockManager; userAgent: string };
  /** The page's document. */
  document: { getElementById(id: string): PageElement | null };
}

/** The browser globals, typed. */
export function browser(): BrowserGlobals {
  return globalThis as unknown as BrowserGlobals;
}
