/**
 * {@linkcode AgentStorage} on a directory (Teleport's `directory`
 * destination): files 0600, the directory 0700, every write atomic
 * (temporary file, fsync, rename), and an exclusive `flock` on `lock` so two
 * tbot processes cannot share one storage.
 *
 * @module
 */
import { join, resolve } from "node:path";
import type { DestinationOptions } from "../../src/agent/outputs/mod.ts";
import type { AgentStorage, ReleaseLock } from "../../src/agent/storage.ts";
import { STORAGE_FILES } from "../../src/agent/storage.ts";
import { KeyboundError } from "../../src/errors.ts";
import { ensureDir, writeFileAtomic } from "./fs.ts";
import { fileErrorMessage } from "./os_error.ts";

/** Name of the empty file written to prove the directory is writable. */
export const WRITE_TEST_FILE = ".write-test";

function storageError(what: string, path: string, err: unknown): KeyboundError {
  return new KeyboundError("STORAGE_ERROR", fileErrorMessage(what, path, err), { cause: err });
}

/** A directory of files. */
export class DirectoryStorage implements AgentStorage {
  readonly persistent = true;
  /** Absolute path of the directory. */
  readonly path: string;

  readonly #prepareFile?: (path: string) => Promise<void>;

  /**
   * Storage in `path`; nothing is touched before {@linkcode DirectoryStorage.init}.
   *
   * @param path the directory (made absolute)
   * @param options `prepareFile` runs on each new file before it is renamed into place
   */
  constructor(path: string, options: DestinationOptions = {}) {
    this.path = resolve(path);
    this.#prepareFile = options.prepareFile;
  }

  describe(): string {
    return `directory ${this.path}`;
  }

  #file(name: string): string {
    if (!/^[A-Za-z0-9._-]+$/.test(name) || name === "." || name === "..") {
      throw new KeyboundError("INTERNAL", `invalid storage file name "${name}"`);
    }
    return join(this.path, name);
  }

  async init(): Promise<void> {
    try {
      await ensureDir(this.path, 0o700);
    } catch (err) {
      const e = storageError("create the directory", this.path, err);
      throw new KeyboundError(
        "STORAGE_ERROR",
        `${e.message}; create it first (mkdir -m 0700 ${this.path}) and make the tbot user its owner`,
        { cause: err },
      );
    }
    try {
      await writeFileAtomic(this.#file(WRITE_TEST_FILE), "", { mode: 0o600 });
    } catch (err) {
      const e = storageError("write to", this.path, err);
      throw new KeyboundError(
        "STORAGE_ERROR",
        `${e.message}; the tbot user needs write access to its storage directory`,
        { cause: err },
      );
    }
  }

  async read(name: string): Promise<Uint8Array | null> {
    try {
      return await Deno.readFile(this.#file(name));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw storageError("read", this.#file(name), err);
    }
  }

  async write(name: string, data: Uint8Array | string): Promise<void> {
    try {
      await writeFileAtomic(this.#file(name), data, { mode: 0o600, prepare: this.#prepareFile });
    } catch (err) {
      // A failed prepareFile already says what and where (e.g. SHARING_FAILED).
      if (err instanceof KeyboundError) throw err;
      throw storageError("write", this.#file(name), err);
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await Deno.remove(this.#file(name));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        throw storageError("remove", this.#file(name), err);
      }
    }
  }

  async list(): Promise<string[]> {
    const names: string[] = [];
    try {
      for await (const e of Deno.readDir(this.path)) {
        // Temporary files of interrupted atomic writes are not storage entries.
        if (e.isFile && !e.name.endsWith(".tmp")) names.push(e.name);
      }
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw storageError("list", this.path, err);
    }
    return names.sort();
  }

  async tryLock(): Promise<ReleaseLock> {
    const path = this.#file(STORAGE_FILES.lock);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
    } catch (err) {
      throw storageError("open the lock file", path, err);
    }
    let locked = false;
    try {
      locked = await file.tryLock(true);
    } catch (err) {
      file.close();
      throw storageError("lock", path, err);
    }
    if (!locked) {
      file.close();
      throw new KeyboundError(
        "STORAGE_ERROR",
        `failed to acquire the exclusive lock on ${path}: another tbot process is using the ` +
          `storage ${this.path} (is tbot already running?)`,
      );
    }
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      try {
        await file.unlock();
      } finally {
        file.close();
      }
    };
  }
}
