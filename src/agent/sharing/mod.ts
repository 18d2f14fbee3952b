/**
 * Output sharing (`destination.readers`): an output's files readable by
 * exactly the named users and groups besides tbot's own user. POSIX ACLs
 * where the filesystem has them; else, for a single group, group ownership
 * with mode 0640 (0750 on the directory). Re-applied after every write,
 * since each write replaces the files (temp + rename). The policy (which
 * method, which entries) lives here; {@linkcode FileSharing} does the I/O.
 *
 * @example
 * ```ts ignore
 * const shared = new SharedOutput(inner, [{ user: "nginx" }], { files, log, directory: "/opt/out" });
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

/** What a {@linkcode SharedOutput} needs. */
export interface SharingDeps {
  /** File operations. */
  files: FileSharing;
  /** Logger. */
  log: Logger;
  /** The output's directory, absolute. */
  directory: string;
}

/** An output whose directory and files are shared with `readers` after every write. */
export class SharedOutput extends AfterWrite {
  #readers: ReaderConfig[];
  #deps: SharingDeps;
  #method: ShareMethod | undefined;

  /**
   * @param inner the output that writes the files
   * @param readers who may read them
   * @param deps file operations, log, directory
   */
  constructor(inner: Output, readers: ReaderConfig[], deps: SharingDeps) {
    super(inner);
    this.#readers = readers;
    this.#deps = deps;
  }

  override async init(): Promise<void> {
    await this.inner.init();
    await this.afterWrite();
  }

  /** The method in use, once shared. */
  get method(): ShareMethod | undefined {
    return this.#method;
  }

  /** Shares the directory and its files (again: each write makes new files). */
  protected async afterWrite(): Promise<void> {
    const { files, directory } = this.#deps;
    const names = await files.listFiles(directory);
    const paths = names.map((n) => `${directory}/${n}`);
    try {
      if (this.#method !== "group_0640") {
        const ok = await files.setAcl(directory, aclText(this.#readers, true));
        if (ok) {
          for (const p of paths) {
            if (!await files.setAcl(p, aclText(this.#readers, false))) {
              throw new Error(`ACLs stopped working on ${p}`);
            }
          }
          this.#chose("posix_acl");
          return;
        }
      }
      const group = this.#singleGroup();
      await files.setGroup(directory, group, 0o750);
      for (const p of paths) await files.setGroup(p, group, 0o640);
      this.#chose("group_0640");
    } catch (cause) {
      throw cause instanceof KeyboundError ? cause : new KeyboundError(
        "SHARING_FAILED",
        `cannot share output "${this.name}" (${directory}) with ${readersText(this.#readers)}: ${
          cause instanceof Error ? cause.message : String(cause)
        }`,
        { cause },
      );
    }
  }

  #singleGroup(): string {
    const r = this.#readers;
    if (r.length === 1 && "group" in r[0]) return r[0].group;
    throw new KeyboundError(
      "SHARING_FAILED",
      `cannot share output "${this.name}" (${this.#deps.directory}): the filesystem has no POSIX ACLs ` +
        "(or setfacl is missing: Debian package acl), and without them only a single group reader " +
        "can be served (group ownership, mode 0640)",
    );
  }

  #chose(method: ShareMethod) {
    if (this.#method === method) return;
    this.#method = method;
    this.#deps.log.info("output shared", {
      service: this.name,
      readers: readersText(this.#readers),
      method,
    });
  }
}
