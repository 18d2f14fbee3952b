/**
 * File helpers for secrets on disk: atomic writes with a fixed mode,
 * private directories, and Deno KV databases that stay private.
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";

/** Options of {@linkcode writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /** File mode; default 0600. Applied with chmod, so the umask cannot widen or narrow it. */
  mode?: number;
  /**
   * Runs on the temporary file after its mode is set and before it is renamed
   * over `path` (an ACL set here is in place when readers first see the file).
   */
  prepare?: (tmpPath: string) => Promise<void>;
}

function randomSuffix(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(8)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

/**
 * Writes `data` to `path` so that readers see the old or the new content,
 * never a mix: writes a temporary file in the same directory, fsyncs it,
 * renames it over `path`, then fsyncs the directory.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const mode = options.mode ?? 0o600;
  const dir = dirname(path);
  const tmp = join(dir, `.${path.slice(dir.length + 1)}.${randomSuffix()}.tmp`);
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  // Created 0600 whatever the target mode: nobody else may read a half-written secret.
  const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
  try {
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.chmod(tmp, mode);
    await options.prepare?.(tmp);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  await syncDir(dir);
}

/** Makes a rename durable; platforms that cannot open directories skip this. */
async function syncDir(dir: string): Promise<void> {
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(dir, { read: true });
    await handle.sync();
  } catch {
    // Not supported here (e.g. Windows); the rename itself is still atomic.
  } finally {
    handle?.close();
  }
}

/**
 * Creates `path` (and parents) if missing; a directory this call creates gets
 * exactly `mode` (default 0700). An existing directory keeps its mode.
 * Throws if `path` exists and is not a directory.
 */
export async function ensureDir(path: string, mode = 0o700): Promise<void> {
  try {
    const st = await Deno.stat(path);
    if (!st.isDirectory) throw new Error(`${path} exists and is not a directory`);
    return;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  await Deno.mkdir(path, { recursive: true, mode });
  await Deno.chmod(path, mode);
}

/** Links one resolution may follow before it stops, as the kernel's ELOOP limit. */
const MAX_LINKS = 40;

/**
 * The real path of `path`, links resolved, as far as it exists; the part
 * not made yet appended as given. Resolved one component at a time, so that
 * every link on the way (in `path` and in the links' targets) is shown to
 * `follow` (its path and its `lstat`) before it is followed: `follow` throws
 * to refuse it. A --data-dir may be a link (systemd's StateDirectory with
 * DynamicUser: /var/lib/NAME -> private/NAME; a disk moved and linked), but
 * another user's link must not send root into a directory of their choice
 * (review-front2 S1): `Deno.realPath` follows any link.
 */
export function realPathSoFar(
  path: string,
  follow: (link: string, info: Deno.FileInfo) => void = () => {},
): string {
  const todo = resolve(path).split("/").filter((part) => part !== "");
  let at = "/";
  let links = 0;
  while (todo.length > 0) {
    const name = todo.shift()!;
    if (name === ".") continue;
    // `at` is a real directory here, so its parent is what the kernel's ".." names.
    if (name === "..") {
      at = dirname(at);
      continue;
    }
    const next = join(at, name);
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(next);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return join(next, ...todo);
      throw err;
    }
    if (!info.isSymlink) {
      at = next;
      continue;
    }
    if (++links > MAX_LINKS) throw new Error(`${path}: too many levels of symbolic links`);
    follow(next, info);
    const target = Deno.readLinkSync(next);
    todo.unshift(...target.split("/").filter((part) => part !== ""));
    if (target.startsWith("/")) at = "/";
  }
  return at;
}

/** True for the error SQLite gives while another connection holds the database's write lock. */
export function isDatabaseLocked(err: unknown): boolean {
  return err instanceof Error && /database is locked/i.test(err.message);
}

/** Attempts of an open or commit that keeps finding the database locked: about 2 s in all. */
const LOCKED_ATTEMPTS = 20;

/**
 * Runs `fn` again, with a growing jittered pause, while it fails because
 * another process holds the database's write lock (two auth processes on one
 * data directory: both create the schema of a new database, then both commit).
 * An attempt that fails so did not apply anything, so a retry is safe.
 *
 * @example
 * ```ts ignore
 * const kv = await retryWhileLocked(() => Deno.openKv("/var/lib/keybound/auth.kv"));
 * ```
 */
export async function retryWhileLocked<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isDatabaseLocked(err) || attempt >= LOCKED_ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, attempt * 10 + Math.random() * 10));
    }
  }
}

/** Files SQLite keeps beside a database: Deno KV runs in WAL mode. */
const SQLITE_COMPANIONS = ["-wal", "-shm", "-journal"];

/** True for Deno KV locations that are not a file: in memory, or a remote database. */
function isKvFile(path: string): boolean {
  return path !== ":memory:" && !/^[a-z][a-z0-9+.-]*:\/\//i.test(path);
}

/**
 * Opens the Deno KV database at `path` so that it and its SQLite companions
 * (`-wal`, `-shm`, `-journal`) are 0600 whatever the umask. SQLite creates a
 * new database 0644 less the umask, but gives its companions the mode of the
 * database file: so the file is created 0600 first (an empty file is a new
 * database to SQLite), an existing one is tightened to 0600, and companions
 * left by an earlier version are tightened after the open.
 *
 * @example
 * ```ts ignore
 * const kv = await openPrivateKv("/var/lib/tbot/bot.kv");
 * ```
 */
export async function openPrivateKv(path: string): Promise<Deno.Kv> {
  if (!isKvFile(path)) return await Deno.openKv(path);
  const file = await Deno.open(path, { write: true, create: true, mode: 0o600 });
  file.close();
  await Deno.chmod(path, 0o600);
  // Opening a new database creates its schema, which takes the write lock.
  const kv = await retryWhileLocked(() => Deno.openKv(path));
  try {
    for (const suffix of SQLITE_COMPANIONS) {
      await Deno.chmod(path + suffix, 0o600).catch((err) => {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      });
    }
  } catch (err) {
    kv.close();
    throw err;
  }
  return kv;
}
