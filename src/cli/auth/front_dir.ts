/**
 * Where the auth service's HTTP server behind the TLS front listens: a Unix
 * socket in `front` in the data directory when its path fits, else in a
 * directory of this user's runtime directory (`$XDG_RUNTIME_DIR`, or
 * `/run/keybound` for root), never in a directory other users may write
 * (docs/security.md). The rules and the refusal; the adapter
 * (runtime-adapters/deno/serve.ts) looks at the file system and makes the
 * directories.
 *
 * @module
 */
import { ConfigError } from "../../errors.ts";
import { FRONT_SOCKET_DIR } from "./data_dir.ts";

/** Longest path of a Unix socket, in bytes (Linux's sun_path holds 108 with the NUL). */
export const SOCKET_PATH_MAX = 107;

/**
 * The longest name the server's socket gets: `PID-RANDOM.GEN.sock`, PID up
 * to 7 digits (Linux's pid_max is at most 4194304), RANDOM 16 hex digits, a
 * heal's GEN up to 6 digits. Counted at its longest so that one data
 * directory gets the same place at every start, whatever the PID.
 */
export const SOCKET_NAME_MAX = "4194304-0123456789abcdef.999999.sock".length;

/** Longest path of the socket's directory, in bytes. */
export const SOCKET_DIR_MAX = SOCKET_PATH_MAX - "/".length - SOCKET_NAME_MAX;

/** Longest `--data-dir` (as the service joins it with `front`) whose `front` holds the socket. */
export const DATA_DIR_MAX = SOCKET_DIR_MAX - `/${FRONT_SOCKET_DIR}`.length;

/** The runtime directory root uses when XDG_RUNTIME_DIR is unset. */
export const ROOT_RUNTIME_DIR = "/run/keybound";

/** Length of `s` in bytes (UTF-8), as the kernel counts a socket's path. */
export function byteLength(s: string): number {
  return new TextEncoder().encode(s).length;
}

/** Whether a socket of the server (at its longest name) fits in directory `dir`. */
export function socketDirFits(dir: string): boolean {
  return byteLength(dir) <= SOCKET_DIR_MAX;
}

/**
 * The socket directory's name in a runtime directory, for the data
 * directory whose `front` is too long: the first 16 hex digits of the
 * SHA-256 of `front`'s absolute path (`hashHex`), so that each data
 * directory has its own (its processes' sweep of dead sockets stays among
 * them) and finds it again at every start; `keybound-` before it in
 * XDG_RUNTIME_DIR, which other programs share.
 */
export function runtimeSocketDirName(hashHex: string, parent: string): string {
  const key = hashHex.slice(0, 16);
  return parent === ROOT_RUNTIME_DIR ? key : `keybound-${key}`;
}

/** What an `lstat` (not following links) tells of a directory. */
export interface DirFacts {
  isDirectory: boolean;
  isSymlink: boolean;
  /** Permission bits and more (`st_mode`). */
  mode: number;
  uid: number;
}

/**
 * Why `info` (its `lstat`) is not a directory that only user `uid` may
 * write (for XDG_RUNTIME_DIR, `exact`: mode 0700 as the XDG Base Directory
 * specification requires, so that no one else may enter it either);
 * undefined if it is.
 */
export function privateDirFault(
  info: DirFacts | undefined,
  options: { uid: number; exact?: boolean },
): string | undefined {
  const kind = notDirectory(info);
  if (kind !== undefined) return kind;
  const mode = info!.mode & 0o777;
  if (options.exact ? mode !== 0o700 : (mode & 0o022) !== 0) {
    return `its mode is ${mode.toString(8).padStart(4, "0")}, not 0700`;
  }
  return notOwnedBy(info!, options.uid);
}

/**
 * Why `info` (its `lstat`) is not a directory of `uid`'s, whatever its
 * mode (the data directory, which is made 0700 after this check; a
 * socket's directory before its chmod); undefined if it is.
 */
export function ownerFault(info: DirFacts | undefined, uid: number): string | undefined {
  return notDirectory(info) ?? notOwnedBy(info!, uid);
}

/** Why `info` (an `lstat`) is not a directory: missing, a link, or something else. */
function notDirectory(info: DirFacts | undefined): string | undefined {
  if (info === undefined) return "it does not exist";
  if (info.isSymlink) return "it is a symbolic link";
  if (!info.isDirectory) return "it is not a directory";
  return undefined;
}

/** Why `info`'s owner is not `uid`; undefined if it is. */
export function notOwnedBy(info: { uid: number }, uid: number): string | undefined {
  if (info.uid === uid) return undefined;
  return `it is owned by uid ${info.uid}, not by this process's uid ${uid}`;
}

/**
 * Why `info` (an `lstat`), a directory on the path from the data (or the
 * socket's) directory up to `/`, lets a user other than root and `uid` change what
 * lies below it; undefined if it does not. OpenSSH's rule for the paths of
 * its keys (StrictModes): owned by root or by `uid`, and not writable by
 * group or others, unless sticky (/tmp: there only an entry's owner or root
 * may rename or delete it, and the entry below, checked in turn, must be
 * root's or `uid`'s). Otherwise another user could move our data directory
 * aside, make their own at its name and bind a socket at the path the front
 * connects to, taking decrypted requests (review-front M1), or read the CA
 * keys in it. An ACL entry's write shows here too: it is capped by the
 * ACL's mask, which `st_mode` holds as the group bits.
 */
export function pathComponentFault(info: DirFacts, uid: number): string | undefined {
  if (info.isSymlink) return "it is a symbolic link";
  if (!info.isDirectory) return "it is not a directory";
  if (info.uid !== 0 && info.uid !== uid) {
    return `it is owned by uid ${info.uid}, not by root or this process's uid ${uid}`;
  }
  const mode = info.mode & 0o7777;
  if ((mode & 0o022) !== 0 && (mode & 0o1000) === 0) {
    return `${modeAndWriters(mode)} may write it, and it is not sticky`;
  }
  return undefined;
}

/**
 * Why files may not be opened by name in the directory `info` describes
 * (the data directory, a `--storage` file's): anyone but its owner may make
 * entries in it. The sticky bit, enough for the directories above (it stops
 * others renaming what is checked below them), does not stop another user
 * planting `keybound.kv-wal` or `keybound.kv` there first (review-front3 M1,
 * M2: a 1777 data directory or --storage directory gave that user the CA
 * keys). Undefined if no one else may.
 */
export function openedByNameFault(info: DirFacts): string | undefined {
  const mode = info.mode & 0o7777;
  if ((mode & 0o022) === 0) return undefined;
  return `${modeAndWriters(mode)} may make files in it, sticky or not, and the cluster's ` +
    "files are opened in it by name";
}

/** "its mode is NNNN: WHO", naming who besides the owner may write a directory of `mode`. */
function modeAndWriters(mode: number): string {
  const who = (mode & 0o002) !== 0 ? "other users" : "its group or an ACL entry (see getfacl)";
  return `its mode is ${mode.toString(8).padStart(4, "0")}: ${who}`;
}

/** Which setting chose a directory on the socket's path, for a refusal to name. */
export type FrontPathSetting =
  | "--data-dir"
  | "--storage"
  | "XDG_RUNTIME_DIR"
  | typeof ROOT_RUNTIME_DIR;

/**
 * The one line that stops a start (or a heal) whose socket's path runs
 * through `component`, a directory another user could change (`fault`):
 * names the setting and its value, the component, why, and the fix. The
 * data directory's line names the socket only if `socketBelow` (a front
 * runs and its socket lies in the data directory's `front`): with
 * `--insecure-no-tls`, or with the socket in a runtime directory, the data
 * directory holds the cluster alone.
 */
export function frontPathRefused(
  setting: FrontPathSetting,
  value: string,
  component: string,
  fault: string,
  socketBelow = true,
): ConfigError {
  const subject = setting === ROOT_RUNTIME_DIR ? setting : `${setting} ${value}`;
  // /run/keybound's refusal names the directory above at fault, /run itself included.
  const at = component === value && setting !== ROOT_RUNTIME_DIR
    ? ""
    : `: ${component}, on its path,`;
  const why = setting === "--data-dir"
    ? "since it holds the cluster's CA keys" +
      (socketBelow ? " and the Unix socket of the server behind the TLS front lies below it" : "")
    : setting === "--storage"
    ? "since the Deno KV file below it holds the cluster's CA keys"
    : "since the Unix socket of the server behind the TLS front lies below it";
  const fix = setting === "--data-dir" || setting === "--storage"
    ? `use a ${setting} whose directories, up to /, only root or this user may write ` +
      "(or fix the owner or mode named)"
    : setting === "XDG_RUNTIME_DIR"
    ? "set XDG_RUNTIME_DIR to a directory whose directories, up to /, only root or this " +
      "user may write (or fix the owner or mode named)"
    : "fix the owner or mode named";
  return new ConfigError(
    `${subject}${at} must be a directory that only root or this user may change, ${why}: ` +
      `${fault}: ${fix}`,
    { details: { setting, value, component } },
  );
}

/**
 * The one line refusing a `--data-dir` directory or a `--storage` file
 * (`value`, whose real path is `real`) that is not this user's (`fault`):
 * either holds the cluster's CA keys.
 */
export function notThisUsersRefused(
  setting: "--data-dir" | "--storage",
  value: string,
  real: string,
  fault: string,
): ConfigError {
  const what = setting === "--data-dir" ? "directory" : "file";
  const at = real === value ? "" : ` (${real})`;
  return new ConfigError(
    `${setting} ${value}${at} must be this user's ${what}, since it holds the cluster's CA ` +
      `keys: ${fault}: use a ${what} of this user's (or chown it, if it is yours to give)`,
    { details: { setting, value, component: real } },
  );
}

/** What a refusal of the socket's place is about. */
export type FrontDirRefusal =
  | { kind: "no-runtime-dir" }
  | { kind: "runtime-dir"; dir: string; fault: string }
  | { kind: "root-dir"; fault: string };

/**
 * The one line that stops a start whose socket has no safe place: the data
 * directory's `front` (`socketDir`) too long, and no usable runtime
 * directory. Names `--data-dir`, its length, the limit and the fixes.
 */
export function frontDirRefused(socketDir: string, why: FrontDirRefusal): ConfigError {
  const dataDir = socketDir.slice(0, -`/${FRONT_SOCKET_DIR}`.length) || socketDir;
  const length = `--data-dir ${dataDir} is ${byteLength(dataDir)} bytes, over the ` +
    `${DATA_DIR_MAX} that leave room in its ${FRONT_SOCKET_DIR} directory for the Unix socket ` +
    "of the server behind the TLS front";
  const fix = "use a shorter --data-dir, or set XDG_RUNTIME_DIR to a directory of this user " +
    "(mode 0700) to hold the socket";
  const details = { socket_dir: socketDir, data_dir_bytes: byteLength(dataDir) };
  switch (why.kind) {
    case "no-runtime-dir":
      return new ConfigError(
        `${length}; XDG_RUNTIME_DIR is not set, and only root may use ${ROOT_RUNTIME_DIR}: ${fix}`,
        { details },
      );
    case "runtime-dir":
      return new ConfigError(
        `${length}, and XDG_RUNTIME_DIR ${why.dir} cannot hold it: ${why.fault}: ${fix}`,
        { details: { ...details, runtime_dir: why.dir } },
      );
    case "root-dir":
      return new ConfigError(
        `${length}, XDG_RUNTIME_DIR is not set, and ${ROOT_RUNTIME_DIR} cannot hold it: ` +
          `${why.fault}: ${fix}`,
        { details: { ...details, runtime_dir: ROOT_RUNTIME_DIR } },
      );
  }
}
