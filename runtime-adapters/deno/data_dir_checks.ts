/**
 * Who may change the paths of the auth service's data directory and of a
 * Deno KV file named by `--storage`: they hold the cluster's CA private keys
 * and the admin identity, so every directory on their real paths up to `/`
 * must be changeable only by root or the process's user (the rule of
 * src/cli/auth/front_dir.ts), the directories the files are opened in by
 * name by no one else at all, and links are followed only if root's or the
 * user's. Checked before anything is made, changed or opened (the threat
 * model: docs/security.md, "Plaintext stays in a private directory"). The
 * socket of the server behind the TLS front is placed by ./serve.ts with the
 * same primitives.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { ConfigError } from "../../src/errors.ts";
import {
  type DirFacts,
  frontPathRefused,
  type FrontPathSetting,
  notOwnedBy,
  notThisUsersRefused,
  openedByNameFault,
  ownerFault,
  pathComponentFault,
  ROOT_RUNTIME_DIR,
  socketDirFits,
} from "../../src/cli/auth/front_dir.ts";
import { FRONT_SOCKET_DIR } from "../../src/cli/auth/data_dir.ts";
import { realPathSoFar } from "./fs.ts";
import { missingPermission } from "./permissions.ts";

/**
 * The auth service's data directory by its real path (links of root's or
 * this user's resolved), once checked as far as it exists: every directory
 * on its path up to `/` only root or this user may change, and the data
 * directory, if there, this user's. Asked at every start, whatever the TLS
 * mode and wherever the front's socket goes: the data directory holds the
 * cluster, CA private keys included, and the admin identity (review-front2
 * M1: a data directory of another user's got root's cluster). Makes,
 * changes and opens nothing: see {@linkcode takeDataDir}. `front`: whether
 * this process runs the TLS front (TLS, or PROXY from a balancer), whose
 * socket then lies in the data directory's `front` if its path fits: a
 * refusal names only what the process uses.
 */
export function checkDataDir(dataDir: string, front: boolean): string {
  const uid = processUid(front);
  const real = realPath(dataDir, uid);
  checkDataPath(dataDir, real, uid, false, front);
  return real;
}

/**
 * The real path of the Deno KV file `--storage` names, checked as the data
 * directory is: it holds the cluster's CA keys wherever it lies, so every
 * directory above it may be changed only by root or this user, links on its
 * path are followed only if root's or this user's, its own directory may
 * not be written by anyone else even if sticky (SQLite opens FILE-wal and
 * FILE-shm in it by name: review-front3 M1), and the file, if there, is a
 * regular file of this user's. Opened by this path, not the one given.
 * Every directory must be there, unless the file's own directory is
 * `dataDir`, the data directory (its real path) the start is about to make:
 * then the missing ones are skipped, and this is asked again once it is
 * made. So a start this refuses has made nothing yet (a --storage in a
 * missing directory elsewhere was refused only after the data directory
 * had been made: review-front4's note). `:memory:` is Deno KV's store
 * without a file.
 */
export function checkStorageFile(path: string, dataDir?: string): string {
  if (path === ":memory:") return path;
  // Asked after checkDataDir, which names the socket or not as the mode does.
  const uid = processUid(false);
  const real = realPath(resolve(path), uid, "--storage");
  const dir = dirname(real);
  const dirInfo = lstatOrNone(dir);
  const made = dir !== dataDir;
  if (made && dirInfo === undefined) {
    throw new ConfigError(
      `--storage ${path}: its directory ${dir} does not exist: make it (mode 0700), or name a ` +
        "file in a directory that does",
      { details: { setting: "--storage", value: path, component: dir } },
    );
  }
  const bad = pathFault(dir, uid, made);
  if (bad) throw frontPathRefused("--storage", path, bad.component, bad.fault);
  const shared = dirInfo && openedByNameFault(dirInfo);
  if (shared) throw frontPathRefused("--storage", path, dir, shared);
  const info = lstatOrNone(real);
  const fault = info === undefined
    ? undefined
    : info.isFile
    ? notOwnedBy(info, uid)
    : "it is not a regular file";
  if (fault !== undefined) throw notThisUsersRefused("--storage", path, real, fault);
  return real;
}

/**
 * Makes the data directory `real` ({@linkcode checkDataDir}'s answer) if
 * missing, checks it, and only then makes it private (0700). Each missing
 * directory is made by `mkdir` alone, which follows no link and accepts
 * nothing already there; the whole path is then walked again by `lstat`,
 * every component now required, and the data directory must be this
 * user's. So a directory another user made at the name first, in a sticky
 * directory like /tmp, is refused before root chmods or writes anything in
 * it (review-front2 M2: ensureDir's recursive mkdir took it, chmod and
 * all). After the walk no one but root or this user can move the data
 * directory or anything above it, so the chmod by name reaches it.
 */
export async function takeDataDir(given: string, real: string, front: boolean): Promise<void> {
  const uid = processUid(front);
  const missing: string[] = [];
  for (let at = real; lstatOrNone(at) === undefined; at = dirname(at)) missing.unshift(at);
  for (const dir of missing) {
    // The parent by lstat first: a link another user put there since
    // checkDataDir would have mkdir make root's directory where it points
    // (review-front3 S1).
    const parent = lstatOrNone(dirname(dir));
    const above = parent ? pathComponentFault(parent, uid) : "it does not exist";
    if (above !== undefined) {
      throw frontPathRefused("--data-dir", given, dirname(dir), above, socketIn(real, front));
    }
    try {
      await Deno.mkdir(dir, { mode: 0o700 });
    } catch (err) {
      // Someone else's, made meanwhile: the walk below judges it.
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
  }
  checkDataPath(given, real, uid, true, front);
  await Deno.chmod(real, 0o700);
}

/**
 * Throws unless every directory from `real` up to `/` may be changed only by
 * root or `uid` ({@linkcode pathComponentFault}) and `real` is `uid`'s;
 * components not there yet are skipped unless `made`.
 */
function checkDataPath(
  given: string,
  real: string,
  uid: number,
  made: boolean,
  front: boolean,
): void {
  const socketBelow = socketIn(real, front);
  const bad = pathFault(real, uid, made);
  if (bad) throw frontPathRefused("--data-dir", real, bad.component, bad.fault, socketBelow);
  const info = lstatOrNone(real);
  if (info === undefined) return;
  const fault = ownerFault(info, uid);
  if (fault !== undefined) throw notThisUsersRefused("--data-dir", given, real, fault);
  // Its 0700 comes after this check: what others planted in it meanwhile would stay.
  const shared = openedByNameFault(info);
  if (shared !== undefined) {
    throw frontPathRefused("--data-dir", given, real, shared, socketBelow);
  }
}

/** Whether the front's socket lies in the data directory `real` (a front runs, and it fits). */
function socketIn(real: string, front: boolean): boolean {
  return front && socketDirFits(join(real, FRONT_SOCKET_DIR));
}

/**
 * This process's uid, which every check of the socket's path needs before
 * anything is made or changed (review-front S2: learnt from a lock file's
 * owner, it came after a chmod through a name another user could swap).
 * `Deno.uid()` needs `--allow-sys=uid`; without it, auth's own line naming
 * the permission, not Deno's prompt or error, and the socket only if `front`
 * (a front runs).
 */
export function processUid(front: boolean): number {
  const missing = missingPermission({ name: "sys", kind: "uid" }, "auth");
  if (missing !== undefined) {
    throw new ConfigError(
      `${missing}: add uid to --allow-sys; auth checks who owns each directory on the path ` +
        "of its data directory" +
        (front ? " and of the socket of the server behind its TLS front" : ""),
    );
  }
  return Deno.uid() ?? -1;
}

/**
 * {@linkcode realPathSoFar}, following only links of root's or `uid`'s, as
 * Linux's protected_symlinks does in sticky directories, but everywhere
 * (that protection is often off, and misses group-writable sticky
 * directories): another user's link would send the service into a
 * directory of their choice, /etc say, to chmod and write there
 * (review-front2 S1).
 */
export function realPath(
  path: string,
  uid: number,
  setting: FrontPathSetting = "--data-dir",
): string {
  return realPathSoFar(path, (link, info) => {
    const owner = info.uid ?? -1;
    if (owner === 0 || owner === uid) return;
    // As frontPathRefused: /run/keybound's names the directory above, /run itself included.
    const subject = setting === ROOT_RUNTIME_DIR ? setting : `${setting} ${path}`;
    const at = link === path && setting !== ROOT_RUNTIME_DIR ? "" : `: ${link}, on its path,`;
    throw new ConfigError(
      `${subject}${at} is a symbolic link of uid ${owner}, not of root or this ` +
        `process's uid ${uid}: auth follows only links root or this user made; use the ` +
        "directory it names, or a link of root's or this user's",
      { details: { setting, value: path, component: link, owner } },
    );
  });
}

/**
 * The first directory from `dir` (a real path) up to `/` that lets another
 * user than root and `uid` change what lies below it, and why
 * ({@linkcode pathComponentFault}); undefined if none. Components not made
 * yet are skipped unless `all`: whoever makes them is checked by the next
 * walk (the data directory's in {@linkcode takeDataDir}).
 */
export function pathFault(
  dir: string,
  uid: number,
  all = false,
): { component: string; fault: string } | undefined {
  for (let at = dir;; at = dirname(at)) {
    const info = lstatOrNone(at);
    const fault = info ? pathComponentFault(info, uid) : all ? "it does not exist" : undefined;
    if (fault !== undefined) return { component: at, fault };
    if (dirname(at) === at) return undefined;
  }
}

/** `lstat` of `path` (not following a link); undefined if nothing is there. */
export function lstatOrNone(path: string): (Deno.FileInfo & DirFacts) | undefined {
  try {
    const info = Deno.lstatSync(path);
    return { ...info, mode: info.mode ?? 0, uid: info.uid ?? -1 };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}
