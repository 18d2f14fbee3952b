/**
 * In-memory {@linkcode AgentStorage}: Teleport's `memory` destination.
 * Nothing survives a restart, which the agent warns about at start.
 *
 * @module
 */
import { utf8 } from "../util/encoding.ts";
import type { AgentStorage, ReleaseLock } from "./storage.ts";

/** Storage that lives in a `Map` for the life of the process. */
export class MemoryStorage implements AgentStorage {
  readonly persistent = false;
  #files = new Map<string, Uint8Array>();

  describe(): string {
    return "memory";
  }

  init(): Promise<void> {
    return Promise.resolve();
  }

  read(name: string): Promise<Uint8Array | null> {
    const v = this.#files.get(name);
    return Promise.resolve(v ? new Uint8Array(v) : null);
  }

  write(name: string, data: Uint8Array | string): Promise<void> {
    this.#files.set(name, typeof data === "string" ? utf8(data) : new Uint8Array(data));
    return Promise.resolve();
  }

  delete(name: string): Promise<void> {
    this.#files.delete(name);
    return Promise.resolve();
  }

  list(): Promise<string[]> {
    return Promise.resolve([...this.#files.keys()].sort());
  }

  /** A no-op, as in Teleport: a memory store cannot be shared between processes. */
  tryLock(): Promise<ReleaseLock> {
    return Promise.resolve(() => Promise.resolve());
  }
}
