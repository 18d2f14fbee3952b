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
 * send is an error naming the flag that is missing. Imports nothing.
 *
 * @module
 */

/** Whether this process holds `permission` already (never prompts). */
export function granted(permission: Deno.PermissionDescriptor): boolean {
  return Deno.permissions.querySync(permission).state === "granted";
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
  if (granted(permission)) return undefined;
  switch (permission.name) {
    case "run":
      return permission.command === undefined
        ? `${program} may not send signals: it runs without --allow-run for every program`
        : `${program} may not start ${permission.command}: its --allow-run does not name it`;
    case "env":
      return permission.variable === undefined
        ? `${program} may not read the environment: it runs without --allow-env`
        : `${program} may not read ${permission.variable}: its --allow-env does not name it`;
    case "net":
      return `${program} may not use ${
        permission.host ?? "the network"
      }: its --allow-net does not name it`;
    case "write":
      return `${program} may not write ${
        permission.path ?? "files"
      }: its --allow-write does not name it`;
    case "sys":
      return `${program} may not read the system's ${permission.kind}: its --allow-sys does not name it`;
    default:
      return `${program} lacks the ${permission.name} permission it needs here`;
  }
}

/**
 * How `program` reads its environment (src/cli/env.ts): a variable outside a
 * narrowed --allow-env is absent, and why is said on asking.
 */
export function envReader(program: string): {
  env(name: string): string | undefined;
  unreadableEnv(name: string): string | undefined;
} {
  return {
    env: readEnv,
    unreadableEnv: (variable) => missingPermission({ name: "env", variable }, program),
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
  if (granted({ name: "run" })) return { command: program };
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
    if (!info.isFile || ((info.mode ?? 0) & 0o111) === 0) continue;
    return { command: place, missing: missingPermission({ name: "run", command: place }) };
  }
  throw new Deno.errors.NotFound(`${program} is not on ${childPath}`);
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
  if (granted({ name: "env" })) return;
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
