/**
 * Reads a command line against a {@linkcode ProgramSpec}: finds the command
 * (with its aliases), checks every flag exists, takes the value its kind needs
 * and applies to that command, checks the number of arguments and the
 * required flags. `parseArgs` only splits the words; every mistake is
 * reported here, once, as a one-line {@linkcode UsageError}.
 *
 * @module
 */
import type { ArgParser, CommandSpec, FlagTable, FlagValues, ProgramSpec } from "./spec.ts";
import { UsageError } from "./usage_error.ts";

/** What the command line asks for. */
export type ParsedCommandLine<T extends FlagTable> =
  | {
    /** Show help: for `command`, or the whole program when absent. */
    kind: "help";
    command?: CommandSpec<keyof T & string>;
    /** True when nothing was asked (no command): the caller exits 2 after the help. */
    missingCommand: boolean;
  }
  | {
    /** Run `command`. */
    kind: "run";
    command: CommandSpec<keyof T & string>;
    /** Positional arguments after the command's words. */
    args: string[];
    /** Flag values (camelCase keys), defaults filled in. */
    flags: FlagValues<T>;
  };

/** `proxy-server` → `proxyServer`. */
export function camelCase(name: string): string {
  return name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Parses `argv` (without the program name) for `program`. Throws
 * {@linkcode UsageError} on any mistake.
 *
 * @example
 * ```ts ignore
 * // `argParser`: Node's util.parseArgs, from the runtime adapter.
 * const line = parseCommandLine(program, ["start", "--data-dir", "d"], argParser);
 * ```
 */
export function parseCommandLine<T extends FlagTable>(
  program: ProgramSpec<T>,
  argv: string[],
  parser: ArgParser,
): ParsedCommandLine<T> {
  const options = Object.fromEntries(
    Object.entries(program.flags).map(([name, f]) => [name, {
      type: f.type,
      ...(f.short ? { short: f.short } : {}),
      ...(f.multiple ? { multiple: true } : {}),
    }]),
  );
  const { positionals, tokens } = parser({
    args: argv,
    options,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const values: Record<string, string | boolean | string[]> = {};
  const given: string[] = [];
  for (const t of tokens) {
    if (t.kind !== "option") continue;
    const spec = program.flags[t.name];
    if (!spec) throw new UsageError(`unknown flag ${t.rawName} (see --help)`);
    const flag = `--${t.name}`;
    if (spec.type === "boolean") {
      if (t.value !== undefined) throw new UsageError(`${flag}: takes no value`);
      values[t.name] = true;
    } else {
      // Without `=`, a value that looks like a flag is a forgotten value (as parseArgs' strict mode).
      // A negative number is not one (no flag is a digit): its own check says what range it needs.
      if (t.value === undefined || (!t.inlineValue && /^-\D/.test(t.value))) {
        throw new UsageError(`${flag}: needs a value (${flag} ${spec.value ?? "VALUE"})`);
      }
      values[t.name] = spec.multiple ? [...(values[t.name] as string[] ?? []), t.value] : t.value;
    }
    if (!given.includes(t.name)) given.push(t.name);
  }

  const help = values.help === true || positionals[0] === "help";
  const words = positionals[0] === "help" ? positionals.slice(1) : positionals;
  if (words.length === 0) return { kind: "help", missingCommand: !help };
  const { command, args } = resolveCommand(program, words);
  if (help) return { kind: "help", command, missingCommand: false };

  const name = command.path.join(" ");
  for (const flag of given) {
    if (!program.global.includes(flag) && !command.flags.includes(flag)) {
      throw new UsageError(
        `${name}: flag --${flag} is not accepted here (flag --${flag} does not apply to "${program.name} ${name}")`,
      );
    }
  }
  const [min, max] = command.arity;
  if (args.length < min || args.length > max) {
    if (args.length > max && max === 0) {
      throw new UsageError(`unexpected argument "${args[0]}" for "${program.name} ${name}"`);
    }
    throw new UsageError(`usage: ${program.name} ${name} ${command.args}`.trimEnd());
  }
  for (const flag of [...program.global, ...command.flags]) {
    const d = program.flags[flag].default;
    if (d !== undefined && values[flag] === undefined) values[flag] = d;
  }
  for (const flag of command.required ?? []) {
    if (values[flag] === undefined) throw new UsageError(`--${flag} is required`);
  }
  const flags = Object.fromEntries(
    Object.entries(values).map(([k, v]) => [camelCase(k), v]),
  ) as FlagValues<T>;
  return { kind: "run", command, args, flags };
}

/** Finds the command named by the leading words; returns it and its arguments. */
export function resolveCommand<T extends FlagTable>(
  program: ProgramSpec<T>,
  positionals: string[],
): { command: CommandSpec<keyof T & string>; args: string[] } {
  const commands = program.commands;
  const aliases = program.aliases ?? {};
  const words: string[] = [];
  let best: { command: CommandSpec<keyof T & string>; args: string[] } | undefined;
  for (let i = 0; i < positionals.length; i++) {
    words.push(aliases[words.join(" ")]?.[positionals[i]] ?? positionals[i]);
    const key = words.join(" ");
    const command = commands.find((c) => c.path.join(" ") === key);
    if (command) best = { command, args: positionals.slice(i + 1) };
    if (!commands.some((c) => c.path.slice(0, words.length).join(" ") === key)) break;
  }
  if (best) return best;
  const first = aliases[""]?.[positionals[0]] ?? positionals[0];
  const prefix = commands.filter((c) => c.path[0] === first && !c.hidden);
  if (prefix.length > 0) {
    const subs = prefix.map((c) => c.path.slice(1).join(" ")).join(", ");
    throw new UsageError(`"${positionals.join(" ")}": expected one of: ${subs}`);
  }
  const known = [...new Set(commands.filter((c) => !c.hidden).map((c) => c.path[0]))];
  throw new UsageError(
    `unknown command "${positionals.join(" ")}" (commands: ${known.join(", ")})`,
  );
}
