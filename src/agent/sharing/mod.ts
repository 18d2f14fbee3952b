/**
 * Output sharing (`destination.readers`): an output's files readable by
 * exactly the named users and groups besides tbot's own user. POSIX ACLs
 * where the filesystem has them; else, for a single group, group ownership
 * with mode 0640 (0750 on the directory). Applied to every new file before
 * it is renamed over the old one (each write is temp + rename), so a reader
 * never sees a file without its sharing. The policy (which method, which
 * entries) lives here; {@linkcode FileSharing} does the I/O.
 *
 * @example
 * ```ts ignore
 * const sharing = new OutputSharing("app", [{ user: "nginx" }], { files, log, directory: "/opt/out" });
 * const destination = openDirectory("/opt/out", { prepareFile: (p) => sharing.shareFile(p) });
 * const shared = new SharedOutput(outputWritingTo(destination), sharing);
 * ```
 *
 * @module
 */
import { KeyboundError } from "../../errors.ts";
import type { Logger } from "../../util/log.ts";
import type { ReaderConfig } from "../config/schema.ts";
import { AfterWrite } from "../outputs/after_write.ts";
import type { Output } from "../outputs/output.ts";

/** How the files are shared. */
export type ShareMethod = "posix_acl" | "group_0640";

/** What the runtime provides to share files. */
export interface FileSharing {
  /** The regular files directly in `dir` (names), dot files excluded. */
  listFiles(dir: string): Promise<string[]>;
  /**
   * Replaces the whole ACL of `path` with `acl` (setfacl's `--set` text).
   * Resolves false when the filesystem or the system has no ACL support.
   */
  setAcl(path: string, acl: string): Promise<boolean>;
  /** Gives `path` group `group` and mode `mode`. */
  setGroup(path: string, group: string, mode: number): Promise<void>;
}

/**
 * The ACL text for `readers`: the owner keeps read-write, the owning group and
 * others get nothing, each reader gets read (and traverse on the directory).
 */
export function aclText(readers: ReaderConfig[], directory: boolean): string {
  const r = directory ? "r-x" : "r--";
  return [
    directory ? "u::rwx" : "u::rw-",
    "g::---",
    "o::---",
    `m::${r}`,
    ...readers.map((x) => "user" in x ? `u:${x.user}:${r}` : `g:${x.group}:${r}`),
  ].join(",");
}

/** Human text of the readers, for logs. */
export function readersText(readers: ReaderConfig[]): string {
  return readers.map((x) => "user" in x ? `user:${x.user}` : `group:${x.group}`).join(",");
}

/** What an {@linkcode OutputSharing} needs. */
export interface SharingDeps {
  /** File operations. */
  files: FileSharing;
  /** Logger. */
  log: Logger;
  /** The output's directory, absolute. */
  directory: string;
}

/**
 * The sharing of one output's directory: which method (chosen on first use,
 * kept after), which entries, applied to a path. Each new file is shared
 * before it replaces the old one ({@linkcode OutputSharing.shareFile} as the
 * destination's `prepareFile`), so a reader never meets a file it may not
 * read, not even for an instant during a renewal.
 */
export class OutputSharing {
  #readers: ReaderConfig[];
  #deps: SharingDeps;
  #name: string;
  #method: ShareMethod | undefined;

  /**
   * @param name the output's name, for logs and errors
   * @param readers who may read the files
   * @param deps file operations, log, directory
   */
  constructor(name: string, readers: ReaderConfig[], deps: SharingDeps) {
    this.#name = name;
    this.#readers = readers;
    this.#deps = deps;
  }

  /** The method in use, once shared. */
  get method(): ShareMethod | undefined {
    return this.#method;
  }

  /** Shares one file (a new file, before it is renamed into place). */
  shareFile(path: string): Promise<void> {
    return this.#share(path, false);
  }

  /** Shares the directory and the files already in it (at start: they may predate `readers`). */
  async shareAll(): Promise<void> {
    const { files, directory } = this.#deps;
    await this.#share(directory, true);
    for (const name of await files.listFiles(directory)) {
      await this.#share(`${directory}/${name}`, false);
    }
  }

  async #share(path: string, directory: boolean): Promise<void> {
    const { files } = this.#deps;
    try {
      if (this.#method !== "group_0640") {
        if (await files.setAcl(path, aclText(this.#readers, directory))) {
          return this.#chose("posix_acl");
        }
        if (this.#method === "posix_acl") throw new Error(`ACLs stopped working on ${path}`);
      }
      await files.setGroup(path, this.#singleGroup(), directory ? 0o750 : 0o640);
      this.#chose("group_0640");
    } catch (cause) {
      throw cause instanceof KeyboundError ? cause : new KeyboundError(
        "SHARING_FAILED",
        `cannot share output "${this.#name}" (${this.#deps.directory}) with ${
          readersText(this.#readers)
        }: ${cause instanceof Error ? cause.message : String(cause)}`,
        { cause },
      );
    }
  }

  #singleGroup(): string {
    const r = this.#readers;
    if (r.length === 1 && "group" in r[0]) return r[0].group;
    throw new KeyboundError(
      "SHARING_FAILED",
      `cannot share output "${this.#name}" (${this.#deps.directory}): the filesystem has no POSIX ACLs ` +
        "(or setfacl is missing: Debian package acl), and without them only a single group reader " +
        "can be served (group ownership, mode 0640)",
    );
  }

  #chose(method: ShareMethod) {
    if (this.#method === method) return;
    this.#method = method;
    this.#deps.log.info("output shared", {
      service: this.#name,
      readers: readersText(this.#readers),
      method,
    });
  }
}

/**
 * An output whose directory is shared with `readers`. Its files are shared
 * as they are written (by the destination, before each rename); `init`
 * shares the directory and what is already in it.
 */
export class SharedOutput extends AfterWrite {
  #sharing: OutputSharing;

  /**
   * @param inner the output that writes the files (to a destination that shares them)
   * @param sharing the output directory's sharing
   */
  constructor(inner: Output, sharing: OutputSharing) {
    super(inner);
    this.#sharing = sharing;
  }

  override async init(): Promise<void> {
    await this.inner.init();
    await this.#sharing.shareAll();
  }

  /** The method in use, once shared. */
  get method(): ShareMethod | undefined {
    return this.#sharing.method;
  }

  /** Nothing: every file was shared before it replaced the old one. */
  protected afterWrite(): Promise<void> {
    return Promise.resolve();
  }
}
