/**
 * One command-line framework for tbot, tctl and the auth service: a program
 * is a table of flags and commands; {@linkcode parseCommandLine} reads argv
 * against it (with Node's `util.parseArgs`, injected, splitting the words)
 * and {@linkcode programHelp} / {@linkcode commandHelp} print it.
 *
 * @example
 * ```ts ignore
 * import { type ArgParser, parseCommandLine, type ProgramSpec } from "./mod.ts";
 * declare const argParser: ArgParser; // Node's util.parseArgs, from the runtime adapter
 * const program = {
 *   name: "hello",
 *   summary: "Greets.",
 *   flags: { name: { type: "string", value: "NAME", help: "who" } },
 *   global: [],
 *   commands: [{ path: ["greet"], args: "", arity: [0, 0], summary: "greet", flags: ["name"] }],
 * } as const satisfies ProgramSpec;
 * const line = parseCommandLine(program, ["greet", "--name", "Ada"], argParser);
 * ```
 *
 * @module
 */
export * from "./spec.ts";
export { camelCase, parseCommandLine, type ParsedCommandLine, resolveCommand } from "./parse.ts";
export { commandHelp, programHelp } from "./help.ts";
export { flagValue, UsageError } from "./usage_error.ts";
