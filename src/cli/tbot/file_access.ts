/**
 * Every file and directory `tbot start` will read or write, checked against
 * the runtime's permissions before anything starts. Under a narrowed
 * `--allow-read` or `--allow-write` (Deno), a file outside it would be asked
 * about on a terminal, and the daemon would wait for an answer; under a
 * service manager it would fail half-way, after the storage lock was taken
 * or the join made. Checked at configuration time instead, the first path
 * outside them stops tbot with one `CONFIG_INVALID` line naming the path,
 * the field or flag that names it, and the flag that would allow it.
 *
 * @module
 */
import type { OnRenewConfig, TbotConfig } from "../../agent/config/schema.ts";
import { ENV_STORAGE_KEK_PATH } from "../../agent/sealed_keys.ts";
import { ConfigError } from "../../errors.ts";
import type { FileAccess, TbotPlatform } from "./platform.ts";

/** One use of a path: what names it, and what tbot does with it. */
export interface PathUse {
  /** The path, as configured. */
  path: string;
  /** Reads it only, or reads and writes it (a directory tbot keeps files in). */
  access: FileAccess | "read_write";
  /** The field or flag that names it: `storage.path`, `--pid-file`, … */
  field: string;
  /**
   * The file the field names, when `path` is its directory: a file written
   * atomically is a new file there, renamed over it, and the directory is
   * read to flush the rename; a database keeps its journals there.
   */
  file?: string;
}

/**
 * The use of `file`, written atomically (and perhaps read first), that
 * `field` names: its directory, read and written.
 */
export function writtenFile(file: string, field: string): PathUse {
  return { path: directoryOf(file), access: "read_write", field, file };
}

/** The directory holding `file` (`.` for a bare name). */
function directoryOf(file: string): string {
  const slash = file.replace(/\/+$/, "").lastIndexOf("/");
  return slash < 0 ? "." : slash === 0 ? "/" : file.slice(0, slash);
}

/**
 * The paths `tbot start` will read or write with `config` (after flags), and
 * the pid file `pidFile`: the storage, its KEK file, the onboarding files,
 * each output's directory, each signal hook's pid file and the directory of
 * the pid file. The configuration
 * file and a `--join-uri` file are read before there is a configuration:
 * they are checked where they are read ({@linkcode checkFileAccess}).
 */
export function pathsOf(
  config: TbotConfig,
  pidFile: string | undefined,
  env: (name: string) => string | undefined,
): PathUse[] {
  const uses: PathUse[] = [];
  const storage = config.storage;
  if (storage.type === "directory") {
    uses.push({ path: storage.path, access: "read_write", field: "storage.path" });
  } else if (storage.type === "deno_kv" && storage.path !== ":memory:") {
    // The database's journal files (-wal, -shm) are made and restricted beside it.
    uses.push(writtenFile(storage.path, "storage.path"));
  }
  if (storage.type !== "memory") {
    // The variable is read only without storage.kek_path (unreadable: src/cli/env.ts says so).
    const kek = storage.kek_path === undefined
      ? { path: env(ENV_STORAGE_KEK_PATH), field: ENV_STORAGE_KEK_PATH }
      : { path: storage.kek_path, field: "storage.kek_path" };
    if (kek.path) uses.push({ path: kek.path, access: "read", field: kek.field });
  }
  const o = config.onboarding;
  // A token given as an absolute path is a file holding the token's name (as in Teleport).
  if (o.token.startsWith("/")) {
    uses.push({ path: o.token, access: "read", field: "onboarding.token" });
  }
  const bk = o.bound_keypair;
  for (const key of ["registration_secret_path", "static_private_key_path"] as const) {
    const path = bk[key];
    if (path) uses.push({ path, access: "read", field: `onboarding.bound_keypair.${key}` });
  }
  if (o.ca_path) uses.push({ path: o.ca_path, access: "read", field: "onboarding.ca_path" });
  config.services.forEach((s, i) => {
    // Written, read back (the hooks' and sharing's files, the lock) and shared from there.
    uses.push({
      path: s.destination.path,
      access: "read_write",
      field: `services[${i}].destination.path`,
    });
    const hook = s.on_renew as OnRenewConfig | undefined;
    if (hook && "pid_file" in hook) {
      uses.push({ path: hook.pid_file, access: "read", field: `services[${i}].on_renew.pid_file` });
    }
  });
  if (pidFile !== undefined) uses.push(writtenFile(pidFile, "--pid-file"));
  return uses;
}

/**
 * Throws `CONFIG_INVALID` for the first of `uses` this process may not make
 * (`details.file_not_allowed`: the path; `details.field`, `details.permission`):
 * "storage.path: tbot may not write /var/lib/tbot: its --allow-write does
 * not name it". Nothing to check where the runtime cannot refuse a file
 * (`platform.missingFileAccess` absent).
 */
export function checkFileAccess(
  uses: readonly PathUse[],
  platform: Pick<TbotPlatform, "missingFileAccess">,
): void {
  const missing = platform.missingFileAccess;
  if (!missing) return;
  for (const use of uses) {
    const accesses: FileAccess[] = use.access === "read_write" ? ["read", "write"] : [use.access];
    for (const access of accesses) {
      const why = missing(use.path, access);
      if (why === undefined) continue;
      const named = use.file === undefined
        ? use.field
        : `${use.field} ${use.file} (written through its directory)`;
      throw new ConfigError(`${named}: ${why}`, {
        details: { file_not_allowed: use.path, field: use.field, permission: access },
      });
    }
  }
}
