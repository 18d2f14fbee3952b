/**
 * What tbot and tctl may do without asking anyone. Run on a terminal with a
 * narrowed permission (`--allow-env=HOME`, `--allow-run=/usr/sbin/nginx`, …),
 * Deno answers a call outside it with an interactive prompt and waits, one
 * prompt per variable or program; a daemon must never wait for a prompt, and
 * a prompt in the middle of a tctl command is one more thing to get wrong.
 * Deno's `permissions.querySync` never prompts, so both ask it first and
 * treat anything but "granted" as not allowed: a variable they may not read
 * is absent (unless it decides something: see `decidingEnv` in
 * src/cli/env.ts), a program they may not start or a signal they may not
 * send is an error naming the flag that is missing. Imports nothing (the
 * `tbot` task's launcher loads it: tests/tbot/startup_imports_test.ts).
 *
 * @module
 */

/** Whether this process holds `permission` already (never prompts). */
export function granted(permission: Deno.PermissionDescriptor): boolean {
  return Deno.permissions.querySync(permission).state === "granted";
}

/**
 * Whether this process holds all of `permission` (never prompts): granted,
 * and no `--deny-*` flag takes a part of it back. `--allow-env
 * --deny-env=X` grants `{name: "env"}` "partially": reading X would fail
 * with Deno's own message, so every variable must be asked about one by one.
 */
export function wholly(permission: Deno.PermissionDescriptor): boolean {
  const status = Deno.permissions.querySync(permission);
  return status.state === "granted" && !status.partial;
}

/** Whether a `--deny-*` flag names `permission` (never prompts): no allow can then grant it. */
export function denied(permission: Deno.PermissionDescriptor): boolean {
  return Deno.permissions.querySync(permission).state === "denied";
}

/** Variable `name`; undefined when it is unset or this process may not read it. */
export function readEnv(name: string): string | undefined {
  return granted({ name: "env", variable: name }) ? Deno.env.get(name) : undefined;
}

/**
 * Why `permission` is missing, naming `program` (the one asking) and the flag
 * that would grant it; undefined if granted.
 */
export function missingPermission(
  permission: Deno.PermissionDescriptor,
  program = "tbot",
): string | undefined {
  const { state } = Deno.permissions.querySync(permission);
  if (state === "granted") return undefined;
  // Denied: a --deny-* flag names it (tbot and tctl never prompt, so no answer did);
  // else the --allow-* flag is narrowed without it.
  const denied = state === "denied";
  const flag = `--${denied ? "deny" : "allow"}-${permission.name}`;
  const whole = denied ? `it runs with ${flag}` : `it runs without ${flag}`;
  const names = denied ? `its ${flag} names it` : `its ${flag} does not name it`;
  switch (permission.name) {
    case "run":
      return permission.command === undefined
        ? `${program} may not send signals: ${whole}${denied ? "" : " for every program"}`
        : `${program} may not start ${permission.command}: ${names}`;
    case "env":
      return permission.variable === undefined
        ? `${program} may not read the environment: ${whole}`
        : `${program} may not read ${permission.variable}: ${names}`;
    case "net":
      return `${program} may not use ${permission.host ?? "the network"}: ${names}`;
    case "read":
    case "write":
      return `${program} may not ${permission.name} ${permission.path ?? "files"}: ${names}`;
    case "sys":
      return `${program} may not read the system's ${permission.kind}: ${names}`;
    default:
      return `${program} lacks the ${permission.name} permission it needs here (${flag})`;
  }
}

/**
 * How `program` reads its environment (src/cli/env.ts): a variable outside a
 * narrowed --allow-env is absent, and why is said on asking.
 */
export function envReader(program: string): {
  env(name: string): string | undefined;
  unreadableEnv(name: string): { why: string; denied: boolean } | undefined;
} {
  return {
    env: readEnv,
    unreadableEnv: (variable) => {
      const why = missingPermission({ name: "env", variable }, program);
      if (why === undefined) return undefined;
      return { why, denied: denied({ name: "env", variable }) };
    },
  };
}

/** What {@linkcode programToRun} found. */
export interface ProgramToRun {
  /** What to start: `program` itself when it holds a `/`, else its full path. */
  command: string;
  /** Why this process may not start it, naming the flag; undefined if it may. */
  missing?: string;
}

/**
 * The program a child whose `PATH` is `childPath` would start for `program`,
 * found once the way Deno finds it (the first place on that `PATH` holding an
 * executable file), and whether this process may start it. Start `command`,
 * never `program`: Deno checks --allow-run against the literal path it
 * starts, so a check of any other place (a later one on the `PATH`, or a
 * place on this process's own `PATH`) would let the start prompt a terminal
 * (`--allow-run=/bin/tr` on a merged-/usr system, where /usr/bin/tr comes
 * first). Looking needs --allow-read of each place looked at, asked first
 * too. With the whole --allow-run, `command` is `program` and Deno finds it.
 * Throws `Deno.errors.NotFound` when no place holds it.
 */
export function programToRun(program: string, childPath: string): ProgramToRun {
  // With the whole --allow-run no start can prompt: Deno finds the program
  // itself, as it always did, without --allow-read of each place and with its
  // own test of who may execute it.
  // A --deny-run of some programs takes this way too: Deno's own refusal would not
  // say which hook or output needed the program.
  if (wholly({ name: "run" })) return { command: program };
  if (program.includes("/")) {
    return { command: program, missing: missingPermission({ name: "run", command: program }) };
  }
  for (const dir of childPath.split(":")) {
    if (dir === "") continue;
    const place = `${dir}/${program}`;
    if (!granted({ name: "read", path: place })) {
      return {
        command: place,
        missing: `tbot may not look for ${program} at ${place}: its --allow-read does not ` +
          `name it (or give the program's full path)`,
      };
    }
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(place);
    } catch {
      continue;
    }
    if (!info.isFile || !mayExecute(info)) continue;
    return { command: place, missing: missingPermission({ name: "run", command: place }) };
  }
  throw new Deno.errors.NotFound(`${program} is not on ${childPath}`);
}

/** This process's user and groups, for {@linkcode mayExecute}; read once. */
let identity: { uid: number; gids: Set<number> } | null | undefined;

/**
 * This process's user and groups (the primary and the supplementary ones),
 * or null without --allow-sys=uid and gid. Deno has no API for the
 * supplementary groups and refuses to read /proc/self/status without
 * --allow-all; Node's `process.getgroups` (a `getgroups(2)`) needs
 * --allow-sys=gid only.
 */
function processIdentity(): { uid: number; gids: Set<number> } | null {
  if (identity !== undefined) return identity;
  if (!granted({ name: "sys", kind: "uid" }) || !granted({ name: "sys", kind: "gid" })) {
    return identity = null;
  }
  // Node's `process` as Deno 2's global, not an import of node:process: this module
  // is in the launcher's minimal graph.
  const node = (globalThis as { process?: { getgroups?: () => number[] } }).process;
  const gids = new Set<number>([Deno.gid() ?? -1, ...(node?.getgroups?.() ?? [])]);
  return identity = { uid: Deno.uid() ?? -1, gids };
}

/**
 * Whether this user may execute the file `info` describes, as `access(2)`
 * decides from the mode bits (and Deno's own search of the PATH; neither
 * sees a POSIX ACL or a `noexec` mount here): root if any execute bit is
 * set; the owner by the owner's bit alone; a member of the file's group by
 * the group's bit; anyone else by the others' bit. Not any execute bit: a
 * file only others may execute is passed over by Deno, so a check of it
 * would name a place Deno never starts. Without --allow-sys=uid,gid: any
 * execute bit, the best that can be told.
 */
function mayExecute(info: Deno.FileInfo): boolean {
  const mode = info.mode ?? 0;
  if ((mode & 0o111) === 0) return false;
  const me = processIdentity();
  if (me === null || me.uid === 0) return true;
  if (info.uid === me.uid) return (mode & 0o100) !== 0;
  if (info.gid !== null && me.gids.has(info.gid)) return (mode & 0o010) !== 0;
  return (mode & 0o001) !== 0;
}

/** Node's `process`, as far as {@linkcode guardNodeEnv} uses it. */
export interface NodeProcess {
  /** The environment as Node's APIs and npm packages read it. */
  env: Record<string, string | undefined>;
}

/**
 * Makes `process.env` answer as {@linkcode readEnv} does, when this process
 * may not read every variable: npm packages read variables of their own
 * (`yaml` reads `LOG_TOKENS` for every token it parses), and Deno's
 * `process.env` would prompt for each outside a narrowed --allow-env. A
 * variable this process may not read is absent; listing the variables gives
 * none, since which are readable cannot be listed. With the whole --allow-env
 * nothing changes.
 */
export function guardNodeEnv(process: NodeProcess): void {
  if (wholly({ name: "env" })) return;
  const real = process.env;
  const readable = (name: string | symbol): name is string =>
    typeof name === "string" && granted({ name: "env", variable: name });
  // The target is an empty object, not `real`: the language's checks of a proxy's
  // answers read the target's own properties, which on Deno's env would prompt.
  process.env = new Proxy({}, {
    get: (_, name) => readable(name) ? real[name] : undefined,
    has: (_, name) => readable(name) && real[name] !== undefined,
    set: (_, name, value) => readable(name) && Reflect.set(real, name, value),
    deleteProperty: (_, name) => readable(name) && Reflect.deleteProperty(real, name),
    ownKeys: () => [],
    getOwnPropertyDescriptor: (_, name) => {
      const value = readable(name) ? real[name] : undefined;
      return value === undefined
        ? undefined
        : { value, writable: true, enumerable: true, configurable: true };
    },
  });
}
