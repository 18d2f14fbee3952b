/**
 * The tables a command line is declared with: every flag once (name, kind,
 * help), every command once (words, arguments, which flags it takes). The
 * parser and the help text are both generated from these tables.
 *
 * @module
 */

/** One flag. */
export interface FlagSpec {
  /** Value kind. */
  readonly type: "string" | "boolean";
  /** One-letter alias (`c` for `-c`). */
  readonly short?: string;
  /** Repeatable: the values are collected in order. */
  readonly multiple?: boolean;
  /** Placeholder of the value in help (`FILE`); string flags only. */
  readonly value?: string;
  /** Value used when the flag is absent (string flags of the command that takes it). */
  readonly default?: string;
  /** One-line description for help. */
  readonly help: string;
}

/** Every flag of a program, by long name. */
export type FlagTable = Readonly<Record<string, FlagSpec>>;

/** `proxy-server` → `proxyServer`. */
export type CamelCase<S extends string> = S extends `${infer H}-${infer T}`
  ? `${H}${Capitalize<CamelCase<T>>}`
  : S;

/** Parsed flag values, keyed by the camelCase of each flag's name. */
export type FlagValues<T extends FlagTable> = {
  -readonly [K in keyof T & string as CamelCase<K>]?: T[K] extends { multiple: true } ? string[]
    : T[K] extends { type: "boolean" } ? boolean
    : string;
};

/** One command. */
export interface CommandSpec<F extends string = string> {
  /** Words that select it, canonical spelling (`["bots", "instances", "show"]`). */
  readonly path: readonly string[];
  /** Arguments for the usage line, e.g. `BOT/UUID`. */
  readonly args: string;
  /** Minimum and maximum number of positional arguments. */
  readonly arity: readonly [number, number];
  /** One-line description. */
  readonly summary: string;
  /** Flags it takes besides the program's global ones. */
  readonly flags: readonly F[];
  /** Flags it cannot run without. */
  readonly required?: readonly F[];
  /** Left out of help (another spelling of a listed command). */
  readonly hidden?: boolean;
}

/** A whole program's command line. */
export interface ProgramSpec<T extends FlagTable = FlagTable> {
  /** The name users type (`tctl`). */
  readonly name: string;
  /** What it does, for the top of the help. */
  readonly summary: string;
  /** Every flag. */
  readonly flags: T;
  /** Flags every command takes (before or after the command). */
  readonly global: readonly (keyof T & string)[];
  /** Every command, in help order. */
  readonly commands: readonly CommandSpec<keyof T & string>[];
  /** Alternative spellings of a word, by the words before it (`"" → {bot: "bots"}`). */
  readonly aliases?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Closing lines of the help (environment variables, where the docs are). */
  readonly footer?: string;
}

/** The subset of Node's `util.parseArgs` the parser uses (injected: `src/` stays runtime-free). */
export type ArgParser = (config: {
  args: string[];
  options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }>;
  allowPositionals: true;
  strict: false;
  tokens: true;
}) => { positionals: string[]; tokens: ArgToken[] };

/** A token of `parseArgs` (`tokens: true`). */
export type ArgToken =
  | { kind: "positional"; index: number; value: string }
  | { kind: "option-terminator"; index: number }
  | {
    kind: "option";
    index: number;
    name: string;
    rawName: string;
    value?: string;
    inlineValue?: boolean;
  };
