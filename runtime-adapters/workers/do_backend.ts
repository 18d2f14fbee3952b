/**
 * A {@linkcode Backend} for the auth service running as a Worker: every call
 * is forwarded over RPC to the one {@linkcode ClusterState} Durable Object
 * that holds the cluster's state.
 *
 * @module
 */
import { KeyboundError } from "../../src/errors.ts";
import type {
  AtomicOperation,
  Backend,
  CommitResult,
  Entry,
  JsonValue,
  Key,
  ListOptions,
} from "../../src/storage/backend.ts";
import type { ClusterStateRpc } from "./cluster_state_do.ts";
import type { DurableObjectNamespace } from "./types.ts";

/** The name of the single ClusterState object a cluster uses. */
export const CLUSTER_STATE_OBJECT_NAME = "cluster-state";

/**
 * A {@linkcode Backend} backed by a {@linkcode ClusterStateRpc} object.
 *
 * It asks for a new stub on every call: a stub is an I/O object bound to the
 * request that created it, while the auth service keeps one backend for all
 * requests of an isolate.
 */
export class DoBackend implements Backend {
  #stub: () => ClusterStateRpc;
  #closed = false;

  /** @param stub returns a stub of the ClusterState object to forward to */
  constructor(stub: () => ClusterStateRpc) {
    this.#stub = stub;
  }

  /** The backend on the cluster's single object in `namespace`. */
  static fromNamespace(
    namespace: DurableObjectNamespace<ClusterStateRpc>,
    name: string = CLUSTER_STATE_OBJECT_NAME,
  ): DoBackend {
    return new DoBackend(() => namespace.get(namespace.idFromName(name)));
  }

  async #call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new KeyboundError("STORAGE_ERROR", "storage backend is closed");
    try {
      return await fn();
    } catch (cause) {
      if (cause instanceof TypeError) throw cause;
      throw new KeyboundError("STORAGE_ERROR", `cluster state ${what} failed`, { cause });
    }
  }

  get<T = JsonValue>(key: Key): Promise<Entry<T> | null> {
    return this.#call("get", () => this.#stub().get([...key]) as Promise<Entry<T> | null>);
  }

  list<T = JsonValue>(prefix: Key, options: ListOptions = {}): Promise<Entry<T>[]> {
    return this.#call("list", () => this.#stub().list([...prefix], options) as Promise<Entry<T>[]>);
  }

  commit(op: AtomicOperation): Promise<CommitResult> {
    return this.#call("commit", () => this.#stub().commit(op));
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
