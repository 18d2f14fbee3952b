/**
 * tctl's dispatcher: picks the command from the positional words (with
 * Teleport's aliases) with src/cli/flags, and runs it. Also `status` and
 * `version`.
 *
 * @module
 */
import { auditLsCommand } from "./audit_commands.ts";
import { authExportCommand, authRotateCommand, statusCommand } from "./auth_commands.ts";
import {
  botInstancesLsCommand,
  botInstancesShowCommand,
  botsAddCommand,
  botsLsCommand,
  botsRmCommand,
  botsUpdateCommand,
} from "./bot_commands.ts";
import { errorLineOf } from "../error_line.ts";
import {
  type ArgParser,
  commandHelp,
  parseCommandLine,
  programHelp,
  type ProgramSpec,
} from "../flags/mod.ts";
import { type CommandSpec, errorText } from "./command.ts";
import type { TctlContext } from "./context.ts";
import { lockCommand, locksLsCommand } from "./lock_commands.ts";
import { editCommand } from "./edit_command.ts";
import { GLOBAL_FLAGS, TCTL_FLAGS, type TctlFlags } from "./options.ts";
import { createCommand, getCommand, rmCommand } from "./resource_commands.ts";
import {
  botInstancesAddCommand,
  boundKeypairRotateCommand,
  tokensAddCommand,
  tokensLsCommand,
  tokensRmCommand,
} from "./token_commands.ts";
import { webEnrollCommand, webLsCommand, webRmCommand } from "./web_commands.ts";

/** `tctl version`. */
const versionCommand: CommandSpec = {
  path: ["version"],
  args: "",
  arity: [0, 0],
  summary: "print tctl's version",
  flags: [],
  run(ctx) {
    ctx.out(`Keybound tctl v${ctx.version}\n`);
    return Promise.resolve();
  },
};

/** Every command, in help order. */
export const COMMANDS: readonly CommandSpec[] = [
  statusCommand,
  createCommand,
  getCommand,
  editCommand,
  rmCommand,
  botsLsCommand,
  botsAddCommand,
  botsUpdateCommand,
  botsRmCommand,
  botInstancesAddCommand,
  botInstancesLsCommand,
  botInstancesShowCommand,
  tokensAddCommand,
  tokensLsCommand,
  tokensRmCommand,
  boundKeypairRotateCommand,
  lockCommand,
  locksLsCommand,
  auditLsCommand,
  webEnrollCommand,
  webLsCommand,
  webRmCommand,
  authRotateCommand,
  authExportCommand,
  versionCommand,
];

/** tctl's flags and commands. */
export const TCTL: ProgramSpec<typeof TCTL_FLAGS> = {
  name: "tctl",
  summary:
    "Administer a Keybound cluster: bots, bound-keypair join tokens, bot instances, locks, CA rotation.",
  flags: TCTL_FLAGS,
  global: GLOBAL_FLAGS,
  commands: COMMANDS,
  aliases: {
    "": { bot: "bots", token: "tokens", del: "rm", lock: "lock", locks: "locks" },
    bots: { list: "ls", remove: "rm", del: "rm", instance: "instances" },
    "bots instances": { list: "ls", get: "show", describe: "show" },
    tokens: { list: "ls", remove: "rm", del: "rm" },
    locks: { list: "ls" },
    audit: { list: "ls" },
    web: { list: "ls", remove: "rm", del: "rm" },
  },
  footer:
    "Environment (used when no flag is given): TELEPORT_AUTH_SERVER, TELEPORT_IDENTITY_FILE,\n" +
    "TELEPORT_CA_PATH.",
};

/**
 * Runs tctl with `argv`; `open` makes the context from the parsed flags.
 * Returns the exit code (2: help shown because no command was given);
 * throws on failure.
 */
export async function runTctl(
  argv: string[],
  parser: ArgParser,
  open: (flags: TctlFlags) => TctlContext,
  out: (text: string) => void,
): Promise<number> {
  const line = parseCommandLine(TCTL, argv, parser);
  if (line.kind === "help") {
    out(line.command ? commandHelp(TCTL, line.command) : programHelp(TCTL));
    return line.missingCommand ? 2 : 0;
  }
  await (line.command as CommandSpec).run(open(line.flags), line.args, line.flags);
  return 0;
}

/** The one line tctl prints on failure: `tctl: error [CODE]: message` (../error_line.ts). */
export function describeError(err: unknown): string {
  return errorLineOf(TCTL.name, err, errorText);
}
