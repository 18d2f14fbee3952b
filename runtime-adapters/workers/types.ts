/**
 * The few Workers runtime types Keybound uses, declared locally so the code
 * type-checks under plain Deno without `@cloudflare/workers-types` (and so
 * nothing outside `runtime-adapters/workers/` can depend on them by accident).
 * Each interface lists only the members called here.
 *
 * @module
 */

/** A cursor over SQL rows; consume it before the next `await`. */
export interface SqlStorageCursor<Row> extends Iterable<Row> {
  /** All remaining rows. */
  toArray(): Row[];
  /** Exactly one row (throws otherwise). */
  one(): Row;
}

/** A SQL value as bound or returned by the DO SQLite API. */
export type SqlValue = string | number | null | ArrayBuffer;

/** `ctx.storage.sql` of a SQLite-backed Durable Object. */
export interface SqlStorage {
  /** Runs one statement with positional `?` bindings. */
  exec<Row = Record<string, SqlValue>>(
    query: string,
    ...bindings: SqlValue[]
  ): SqlStorageCursor<Row>;
}

/** Options of the asynchronous storage `list`. */
export interface StorageListOptions {
  /** Only keys starting with this string. */
  prefix?: string;
}

/** `ctx.storage` of a SQLite-backed Durable Object. */
export interface DurableObjectStorage {
  /** The SQL API. */
  sql: SqlStorage;
  /** Runs `fn` in one SQLite transaction; it rolls back if `fn` throws. */
  transactionSync<T>(fn: () => T): T;
  /** Reads one value of the key-value API. */
  get<T = unknown>(key: string): Promise<T | undefined>;
  /** Writes values of the key-value API in one implicit transaction. */
  put(entries: Record<string, unknown>): Promise<void>;
  /** Deletes keys of the key-value API. */
  delete(keys: string[]): Promise<number>;
  /** Lists the key-value API. */
  list<T = unknown>(options?: StorageListOptions): Promise<Map<string, T>>;
  /** Deletes all storage of the object, SQL and key-value (and its alarm). */
  deleteAll(): Promise<void>;
  /** The scheduled alarm time in epoch milliseconds, or null. */
  getAlarm(): Promise<number | null>;
  /** Schedules the object's single alarm. */
  setAlarm(scheduledTime: number | Date): Promise<void>;
  /** Cancels the alarm. */
  deleteAlarm(): Promise<void>;
  /** Resolves once every write issued so far is durable (committed). */
  sync(): Promise<void>;
}

/** The `ctx` a Durable Object is constructed with. */
export interface DurableObjectState {
  /** The object's ID. */
  id: DurableObjectId;
  /** Persistent storage. */
  storage: DurableObjectStorage;
  /** Holds back deliveries to the object until `fn` settles. */
  blockConcurrencyWhile<T>(fn: () => Promise<T>): Promise<T>;
  /** Keeps the request alive until `promise` settles. */
  waitUntil(promise: Promise<unknown>): void;
}

/** An opaque Durable Object ID. */
export interface DurableObjectId {
  /** Hex form. */
  toString(): string;
}

/** A Durable Object namespace binding whose stubs expose `Rpc`'s methods. */
export interface DurableObjectNamespace<Rpc> {
  /** The ID for a name (always the same object for the same name). */
  idFromName(name: string): DurableObjectId;
  /** A new random ID. */
  newUniqueId(): DurableObjectId;
  /** A stub for the object. */
  get(id: DurableObjectId): DurableObjectStub<Rpc>;
}

/** A client-side handle on a Durable Object: its RPC methods plus `fetch`. */
export type DurableObjectStub<Rpc> = Rpc & {
  /** Sends an HTTP request to the object's `fetch` handler. */
  fetch(input: Request | string, init?: RequestInit): Promise<Response>;
};

/** The execution context of a Worker invocation. */
export interface ExecutionContext {
  /** Keeps the invocation alive until `promise` settles. */
  waitUntil(promise: Promise<unknown>): void;
}
