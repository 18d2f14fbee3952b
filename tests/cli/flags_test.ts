import { argParser } from "../../runtime-adapters/deno/arg_parser.ts";
import {
  commandHelp,
  flagValue,
  parseCommandLine,
  programHelp,
  type ProgramSpec,
  UsageError,
} from "../../src/cli/flags/mod.ts";
import { AUTH } from "../../src/cli/auth/command_line.ts";
import { TBOT } from "../../src/cli/tbot/flags.ts";
import { TCTL } from "../../src/cli/tctl/mod.ts";
import { parseHostPort } from "../../src/util/host_port.ts";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../_assert.ts";

const FLAGS = {
  config: { type: "string", short: "c", value: "FILE", help: "config file" },
  verbose: { type: "boolean", short: "v", help: "say more" },
  help: { type: "boolean", short: "h", help: "show help" },
  pin: { type: "string", multiple: true, value: "PIN", help: "a pin" },
  "max-age": { type: "string", value: "D", default: "1h", help: "oldest allowed" },
  dir: { type: "string", value: "DIR", help: "where" },
} as const;

const PROGRAM: ProgramSpec<typeof FLAGS> = {
  name: "demo",
  summary: "A demo program.",
  flags: FLAGS,
  global: ["config", "verbose", "help"],
  commands: [
    {
      path: ["keys", "add"],
      args: "NAME",
      arity: [1, 1],
      summary: "add a key",
      flags: ["pin", "max-age", "dir"],
      required: ["dir"],
    },
    { path: ["keys", "ls"], args: "", arity: [0, 0], summary: "list keys", flags: [] },
    { path: ["version"], args: "", arity: [0, 0], summary: "print the version", flags: [] },
  ],
  aliases: { keys: { list: "ls" } },
};

function parse(argv: string[]) {
  return parseCommandLine(PROGRAM, argv, argParser);
}

function usageError(argv: string[]): string {
  const e = assertThrows(() => parse(argv), UsageError);
  assert(!e.message.includes("\n"), `one line: ${e.message}`);
  return e.message;
}

Deno.test("flags: values by camelCase name, defaults, repeats, aliases", () => {
  const line = parse(["-v", "keys", "add", "k1", "--pin", "a", "--pin=b", "-c", "f", "--dir", "d"]);
  assert(line.kind === "run");
  assertEquals(line.command.path, ["keys", "add"]);
  assertEquals(line.args, ["k1"]);
  assertEquals(line.flags, {
    verbose: true,
    pin: ["a", "b"],
    config: "f",
    dir: "d",
    maxAge: "1h",
  });
  const ls = parse(["keys", "list"]);
  assert(ls.kind === "run");
  assertEquals(ls.command.path, ["keys", "ls"]);
});

Deno.test("flags: every mistake is one line naming the flag or argument", () => {
  assertEquals(usageError(["version", "--frob"]), "unknown flag --frob (see --help)");
  assertEquals(usageError(["version", "-x"]), "unknown flag -x (see --help)");
  assertEquals(usageError(["version", "--verbose=yes"]), "--verbose: takes no value");
  assertEquals(usageError(["version", "--config"]), "--config: needs a value (--config FILE)");
  assertEquals(
    usageError(["keys", "add", "k", "--dir", "--verbose"]),
    "--dir: needs a value (--dir DIR)",
  );
  // A negative number is a value for the flag's own check (review3 N4: "-1" read as a flag).
  const negative = parse(["keys", "add", "k", "--dir", "-1"]);
  assert(negative.kind === "run");
  assertEquals(negative.flags.dir, "-1");
  assertStringIncludes(usageError(["version", "--pin", "p"]), "version: flag --pin");
  assertEquals(usageError(["keys", "add", "k"]), "--dir is required");
  assertEquals(usageError(["keys", "add"]), "usage: demo keys add NAME");
  assertEquals(usageError(["version", "extra"]), 'unexpected argument "extra" for "demo version"');
  assertEquals(usageError(["keys"]), '"keys": expected one of: add, ls');
  assertStringIncludes(usageError(["nope"]), 'unknown command "nope"');
  const bad = assertThrows(() => flagValue("--port", () => Number.parseInt("x", 10) || fail()));
  assertEquals(bad.message, "--port: not a number");
  // A parser given the flag's name says so in details.path: the message is not prefixed twice.
  const named = assertThrows(() =>
    flagValue("--listen", () => parseHostPort("x:99999", "--listen"))
  );
  assertEquals(
    named.message,
    '--listen: invalid address "x:99999" (expected HOST:PORT, with IPv6 hosts in brackets)',
  );
  // The structure decides, never the text: a message that merely starts with the flag is prefixed.
  const lookalike = assertThrows(() => flagValue("--port", () => fail("--port: too big")));
  assertEquals(lookalike.message, "--port: --port: too big");
});

function fail(message = "not a number"): never {
  throw new Error(message);
}

Deno.test("flags: help is generated from the same table", () => {
  const none = parse([]);
  assertEquals(none, { kind: "help", missingCommand: true });
  const all = parse(["--help"]);
  assertEquals(all, { kind: "help", missingCommand: false });
  const text = programHelp(PROGRAM);
  for (const c of PROGRAM.commands) assertStringIncludes(text, `demo ${c.path.join(" ")}`);
  for (const [name, f] of Object.entries(FLAGS)) {
    assertStringIncludes(text, `--${name}`);
    assertStringIncludes(text, f.help);
  }
  assertStringIncludes(text, "-c, --config FILE");
  assertStringIncludes(text, "oldest allowed (default 1h)");
  assertStringIncludes(text, "a pin (repeatable)");
  const one = parse(["keys", "add", "--help"]);
  assert(one.kind === "help" && one.command);
  const help = commandHelp(PROGRAM, one.command);
  assertStringIncludes(help, "Usage: demo keys add NAME [flags]");
  assertStringIncludes(help, "--dir DIR");
  assertEquals(parse(["help", "keys", "ls"]).kind, "help");
});

Deno.test("flags: every flag of tbot, tctl and auth is in a command's help and parses", () => {
  for (const program of [TBOT, TCTL, AUTH] as ProgramSpec[]) {
    const text = programHelp(program);
    for (const line of text.split("\n")) assert(line.length <= 100, `${program.name}: ${line}`);
    for (const [name, f] of Object.entries(program.flags)) {
      assertStringIncludes(text, `--${name}`, `${program.name} --${name}`);
      assert(f.help.length > 0, `${program.name} --${name} has help`);
    }
    for (const command of program.commands) {
      const help = commandHelp(program, command);
      for (const name of command.flags) assertStringIncludes(help, `--${name}`);
      for (const name of command.flags) {
        assert(name in program.flags, `${program.name} ${command.path.join(" ")}: --${name}`);
      }
    }
  }
});

Deno.test("flags: an unknown flag exits 2 with one line, on each binary", async () => {
  const mains = {
    tbot: ["--unstable-kv", "runtime-adapters/deno/entry/tbot.ts", "version"],
    tctl: ["runtime-adapters/deno/entry/tctl.ts", "version"],
    auth: ["--unstable-kv", "runtime-adapters/deno/entry/auth.ts", "start"],
  };
  const root = new URL("../../", import.meta.url).pathname;
  for (const [name, args] of Object.entries(mains)) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", ...args, "--frobnicate"],
      cwd: root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 2, `${name}: ${stderr}`);
    assertEquals(stderr.trimEnd().split("\n").length, 1, `${name}: ${stderr}`);
    assertStringIncludes(stderr, "unknown flag --frobnicate (see --help)");
  }
});
