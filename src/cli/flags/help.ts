/**
 * Help text generated from the same {@linkcode ProgramSpec} the parser reads,
 * so a flag cannot be parsed without being documented, or documented
 * without being parsed.
 *
 * @module
 */
import type { CommandSpec, FlagSpec, FlagTable, ProgramSpec } from "./spec.ts";

function flagLabel(name: string, f: FlagSpec): string {
  const long = `--${name}${f.type === "string" ? ` ${f.value ?? "VALUE"}` : ""}`;
  return f.short ? `-${f.short}, ${long}` : long;
}

function flagHelp(f: FlagSpec): string {
  const notes = [
    ...(f.multiple ? ["repeatable"] : []),
    ...(f.default !== undefined ? [`default ${f.default}`] : []),
  ];
  return notes.length > 0 ? `${f.help} (${notes.join("; ")})` : f.help;
}

/** Help lines are wrapped to this many columns. */
const LINE_WIDTH = 100;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  return [...lines, line];
}

function columns(rows: [string, string][]): string[] {
  const width = Math.max(0, ...rows.map(([l]) => l.length));
  const indent = " ".repeat(width + 4);
  return rows.flatMap(([l, r]) => {
    const [first, ...rest] = wrap(r, Math.max(30, LINE_WIDTH - indent.length));
    return [`  ${l.padEnd(width)}  ${first}`.trimEnd(), ...rest.map((x) => indent + x)];
  });
}

function flagRows(table: FlagTable, names: readonly string[]): [string, string][] {
  return names.map((n) => [flagLabel(n, table[n]), flagHelp(table[n])]);
}

function commandLine(program: { name: string }, c: CommandSpec): string {
  return [program.name, ...c.path, c.args].filter((w) => w !== "").join(" ");
}

/** The help of the whole program: commands, global flags, and every command flag. */
export function programHelp<T extends FlagTable>(program: ProgramSpec<T>): string {
  const commands = program.commands.filter((c) => !c.hidden);
  const commandFlags = [...new Set(commands.flatMap((c) => c.flags))]
    .filter((f) => !program.global.includes(f));
  return [
    `Usage: ${program.name} [global flags] COMMAND [flags] [args]`,
    "",
    program.summary,
    "",
    "Commands:",
    ...columns(commands.map((c) => [commandLine(program, c), c.summary])),
    "",
    "Global flags (before or after the command):",
    ...columns(flagRows(program.flags, program.global)),
    ...(commandFlags.length === 0 ? [] : [
      "",
      `Command flags (\`${program.name} COMMAND --help\` lists a command's own):`,
      ...columns(flagRows(program.flags, commandFlags)),
    ]),
    ...(program.footer ? ["", program.footer] : []),
    "",
  ].join("\n");
}

/** The help of one command: its usage line, summary and flags. */
export function commandHelp<T extends FlagTable>(
  program: ProgramSpec<T>,
  command: CommandSpec<keyof T & string>,
): string {
  return [
    `Usage: ${commandLine(program, command)}${command.flags.length > 0 ? " [flags]" : ""}`,
    "",
    command.summary,
    ...(command.flags.length === 0 ? [] : [
      "",
      "Flags:",
      ...columns(flagRows(program.flags, command.flags)),
    ]),
    "",
    "Global flags:",
    ...columns(flagRows(program.flags, program.global)),
    "",
  ].join("\n");
}
