/**
 * What a test process starts outside itself must end with it, however it
 * ends (SIGKILL, a crash, a CI job cancelled: no unload handler, no
 * dispose). Each such fixture lives in a temporary directory of its own,
 * with an `owner` file naming the test process, and a watchdog shell beside
 * it, in a session of its own, that reads its stdin until the test
 * process's end of the pipe closes, then runs the fixture's stop script on
 * the directory (which also removes it). What a watchdog could not (it was
 * killed too) the first fixture of a later process sweeps: directories
 * whose owner is gone.
 *
 * Two kinds use it: the test PostgreSQL (_postgres.ts) and
 * {@linkcode processDir}, where auth processes and HAProxy run.
 *
 * @module
 */

/** The file in a fixture directory naming the test process: {@linkcode processIdentity}. */
const OWNER_FILE = "owner";
/** A directory without an owner file (made before there was one) counts as left after this. */
const OWNERLESS_AGE_MS = 3_600_000;

/**
 * `<pid> <start time>` of a running process, or undefined: with the start
 * time (clock ticks after boot, field 22 of /proc/PID/stat) it names one
 * process even once its pid is reused.
 */
export function processIdentity(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return `${pid} ${stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]}`;
  } catch {
    return undefined;
  }
}

/** Writes `dir`'s owner file: this process. */
export async function claimDir(dir: string): Promise<void> {
  await Deno.writeTextFile(`${dir}/${OWNER_FILE}`, `${processIdentity(Deno.pid)}\n`);
}

/**
 * The watchdog of `dir`: a shell in a session of its own (a terminal's
 * Ctrl-C or a signal to the test's process group does not reach it),
 * ignoring hangups, that waits for end of file on its stdin and then runs
 * `stop` (sh, `$1` = `dir`). Nothing but this process holds the pipe's
 * other end, so the end of file comes when this process closes it
 * ({@linkcode endWatchdog}) or exits in any way.
 */
export function startWatchdog(dir: string, stop: string): Deno.ChildProcess {
  return new Deno.Command("setsid", {
    args: ["sh", "-c", `trap '' HUP INT TERM; cat >/dev/null; ${stop}`, "sh", dir],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** Runs the watchdog's stop now and waits for it. */
export async function endWatchdog(watchdog: Deno.ChildProcess): Promise<void> {
  await watchdog.stdin.close().catch(() => {});
  await watchdog.status;
}

/** Where a sweep looks and what it does. */
export interface SweepOptions {
  /** The directory holding the fixture directories. */
  parent: string;
  /** Their name prefix. */
  prefix: string;
  /** Owners a fixture directory may have (besides this process's user). */
  uids: number[];
  /** The stop script, as {@linkcode startWatchdog}'s. */
  stop: string;
  /** For a directory without an owner file: something still runs in it. */
  busy?: (dir: string) => boolean;
}

/**
 * Runs `stop` on each fixture directory in `parent` (name prefix, a real
 * directory of an allowed user) whose owner file names a process that is
 * gone; one without an owner file only when it is over an hour old and not
 * `busy` (its process may still live). Returns the directories stopped.
 */
export async function sweepDirs(o: SweepOptions): Promise<string[]> {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(o.parent)];
  } catch {
    return removed;
  }
  for (const e of entries) {
    if (!e.name.startsWith(o.prefix) || !e.isDirectory) continue;
    const dir = `${o.parent}/${e.name}`;
    try {
      const st = Deno.lstatSync(dir);
      if (!st.isDirectory || (!o.uids.includes(st.uid!) && st.uid !== Deno.uid())) continue;
      let owner: string | undefined;
      try {
        owner = Deno.readTextFileSync(`${dir}/${OWNER_FILE}`).trim();
      } catch { /* none */ }
      if (owner !== undefined) {
        if (processIdentity(Number(owner.split(" ")[0])) === owner) continue;
      } else {
        const age = Date.now() - (st.mtime?.getTime() ?? Date.now());
        if (age < OWNERLESS_AGE_MS || o.busy?.(dir)) continue;
      }
      await new Deno.Command("sh", { args: ["-c", o.stop, "sh", dir] }).output();
      removed.push(dir);
    } catch { /* gone meanwhile, or not ours to read */ }
  }
  return removed;
}

/** Prefix of {@linkcode processDir}'s directories. */
const PROCESS_DIR_PREFIX = "keybound-ha-";

/**
 * sh: ends every process whose command line names a path inside `$1` (the
 * auth processes' `--data-dir`, HAProxy's `-f` configuration): SIGTERM,
 * waits until they are gone, SIGKILL to what still runs in it after 10 s
 * (looked up again, so a pid reused meanwhile is not hit), then removes
 * `$1`. The shell's own command
 * line names `$1` without the slash, so it never matches itself.
 */
const END_PROCESSES_AND_REMOVE = `
inside() {
  for p in /proc/[0-9]*; do
    tr '\\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "$1/" && echo "\${p#/proc/}"
  done
}
pids=$(inside "$1")
if [ -n "$pids" ]; then
  kill -TERM $pids 2>/dev/null
  # Until each is gone (reaped: an exiting process's command line is empty before that).
  i=0
  while [ $i -lt 100 ]; do
    left=
    for pid in $pids; do kill -0 "$pid" 2>/dev/null && left=1; done
    [ -z "$left" ] && break
    sleep 0.1
    i=$((i + 1))
  done
  if [ $i -ge 100 ]; then
    pids=$(inside "$1")
    if [ -n "$pids" ]; then kill -KILL $pids 2>/dev/null; fi
  fi
fi
rm -rf -- "$1"
`;

/** A directory where a test runs processes (auth, HAProxy) that must not outlive it. */
export interface ProcessDir extends AsyncDisposable {
  /** The directory: every process to end with the test names a path inside it. */
  dir: string;
  /** Pid of its watchdog. */
  watchdogPid: number;
}

let processDirsSwept: Promise<unknown> | undefined;

/**
 * A fresh temporary directory for processes a test starts: any process
 * whose command line names a path inside it (`--data-dir DIR/auth0`,
 * `-f DIR/haproxy.cfg`) is ended with SIGTERM, and the directory removed,
 * when it is disposed or when this process ends in any way (its watchdog).
 * The first in a process sweeps what killed processes left.
 */
export async function processDir(): Promise<ProcessDir> {
  const dir = await Deno.makeTempDir({ prefix: PROCESS_DIR_PREFIX });
  await claimDir(dir);
  await (processDirsSwept ??= sweepProcessDirs().catch(() => {}));
  const watchdog = startWatchdog(dir, END_PROCESSES_AND_REMOVE);
  return {
    dir,
    watchdogPid: watchdog.pid,
    [Symbol.asyncDispose]: () => endWatchdog(watchdog),
  };
}

/**
 * Ends the processes of, and removes, the {@linkcode processDir}
 * directories in `parent` (default: where Deno makes temporary
 * directories) whose owner is gone. Returns them.
 */
export function sweepProcessDirs(parent?: string): Promise<string[]> {
  return sweepDirs({
    parent: parent ?? tempParent(),
    prefix: PROCESS_DIR_PREFIX,
    uids: [],
    stop: END_PROCESSES_AND_REMOVE,
    busy: namedByAProcess,
  });
}

/** Whether a running process's command line names a path inside `dir`. */
function namedByAProcess(dir: string): boolean {
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^[0-9]+$/.test(e.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${e.name}/cmdline`).includes(`${dir}/`)) return true;
    } catch { /* gone meanwhile */ }
  }
  return false;
}

/** The directory Deno makes temporary directories in. */
export function tempParent(): string {
  return Deno.env.get("TMPDIR") || "/tmp";
}
