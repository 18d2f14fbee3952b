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

/**
 * Replaces `dir/name` by `text` at once (a temporary name, then a rename): a
 * concurrent sweep reads the old file or the new, never a part of one (an
 * empty owner would read as a gone one, and its directory be removed).
 */
function replaceFile(dir: string, name: string, text: string): void {
  const temp = `${dir}/.${name}.tmp`;
  Deno.writeTextFileSync(temp, text);
  Deno.renameSync(temp, `${dir}/${name}`);
}

/** Writes `dir`'s owner file: this process. */
export function claimDir(dir: string): Promise<void> {
  replaceFile(dir, OWNER_FILE, `${processIdentity(Deno.pid)}\n`);
  return Promise.resolve();
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
/** The file in a {@linkcode processDir} naming what its fixtures started: one {@linkcode processIdentity} a line. */
const PROCESSES_FILE = "pids";

/**
 * Adds the process `pid` (started by a fixture, still running) to what
 * `dir`'s stop ends. Sync, so two calls of one process never interleave.
 */
export function recordProcess(dir: string, pid: number): void {
  const id = processIdentity(pid);
  if (id === undefined) return; // Ended already: nothing to end.
  let known = "";
  try {
    known = Deno.readTextFileSync(`${dir}/${PROCESSES_FILE}`);
  } catch { /* the first */ }
  replaceFile(dir, PROCESSES_FILE, `${known}${id}\n`);
}

/**
 * sh: ends the processes recorded in `$1/pids` ({@linkcode recordProcess})
 * that are still the same process (pid and start time, as
 * {@linkcode processIdentity}): SIGTERM, waits until they are gone (reaped:
 * a zombie keeps its identity until then), SIGKILL to those left after
 * 10 s, then removes
 * `$1`. Nothing else is signalled: a process that merely names a path in
 * the directory (an operator's `tail -f` of a log) is not the test's.
 */
const END_PROCESSES_AND_REMOVE = `
recorded() {
  file="$1/${PROCESSES_FILE}"
  [ -f "$file" ] || return 0
  while read -r pid start; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    # After "pid (comm) ": field 3 (state) first, field 22 (start time) 20th.
    set -- \${stat##*) }
    [ "\${20}" = "$start" ] && echo "$pid"
  done <"$file"
}
pids=$(recorded "$1")
if [ -n "$pids" ]; then
  kill -TERM $pids 2>/dev/null
  i=0
  while [ $i -lt 100 ] && [ -n "$(recorded "$1")" ]; do
    sleep 0.1
    i=$((i + 1))
  done
  pids=$(recorded "$1")
  if [ -n "$pids" ]; then kill -KILL $pids 2>/dev/null; fi
fi
rm -rf -- "$1"
`;

/** A directory where a test runs processes (auth, HAProxy) that must not outlive it. */
export interface ProcessDir extends AsyncDisposable {
  /** The directory. */
  dir: string;
  /** Pid of its watchdog. */
  watchdogPid: number;
  /** Ends the process `pid` (just started by the test) with the directory: {@linkcode recordProcess}. */
  track(pid: number): void;
  /**
   * Calls `start` and tracks the processes it spawned before its first
   * await: for a starter that says its pid only once the process is ready
   * (spawnAuthService), so a test killed meanwhile still ends it.
   */
  spawned<T>(start: () => T): T;
}

/** The pids of this process's children (ppid, field 4 of /proc/PID/stat). */
function children(): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^[0-9]+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === Deno.pid) {
        pids.push(Number(e.name));
      }
    } catch { /* gone meanwhile */ }
  }
  return pids;
}

let processDirsSwept: Promise<unknown> | undefined;

/**
 * A fresh temporary directory for processes a test starts: each process
 * given to its `track` is ended with SIGTERM, and the directory removed,
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
    track: (pid) => recordProcess(dir, pid),
    spawned(start) {
      const before = new Set(children());
      // Synchronous up to its spawn: nothing else of this process starts a child meanwhile.
      const started = start();
      for (const pid of children()) if (!before.has(pid)) recordProcess(dir, pid);
      return started;
    },
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

/** Whether a running process's command line names a path inside `dir` (then a directory without owner is left alone). */
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
