/**
 * tctl's dispatcher: picks the command from the positional words (with
 * Teleport's aliases), checks flags and arity, and runs it. Also `status`,
 * `version` and `help`.
 *
 * @module
 */
import { auditLsCommand } from "./audit_commands.ts";
import {
  botInstancesLsCommand,
  botInstancesShowCommand,
  botsAddCommand,
  botsLsCommand,
  botsRmCommand,
} from "./bot_commands.ts";
import { type CommandSpec, errorText, UsageError } from "./command.ts";
import type { TctlContext } from "./context.ts";
import { lockCommand, locksLsCommand } from "./lock_commands.ts";
import { GLOBAL_FLAGS, type TctlFlags } from "./options.ts";
import { createCommand, getCommand, rmCommand } from "./resource_commands.ts";
import { boundKeypairRotateCommand, tokensLsCommand, tokensRmCommand } from "./token_commands.ts";

/** `tctl status`: cluster name, version and CA pin, as Teleport prints them. */
const statusCommand: CommandSpec = {
  path: ["status"],
  args: "",
  arity: [0, 0],
  summary: "show the cluster name, auth service version and CA pin",
  flags: [],
  async run(ctx) {
    const s = await (await ctx.api()).status();
    ctx.out(`Cluster  ${s.cluster_name}\nVersion  ${s.server_version}\nCA pin   ${s.ca_pin}\n`);
  },
};

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

/** `tctl help`. */
const helpCommand: CommandSpec = {
  path: ["help"],
  args: "",
  arity: [0, 8],
  summary: "show this help",
  flags: [],
  run(ctx) {
    ctx.out(usage());
    return Promise.resolve();
  },
};

/** Every command, in help order. */
export const COMMANDS: readonly CommandSpec[] = [
  statusCommand,
  createCommand,
  getCommand,
  rmCommand,
  botsLsCommand,
  botsAddCommand,
  botsRmCommand,
  botInstancesLsCommand,
  botInstancesShowCommand,
  tokensLsCommand,
  tokensRmCommand,
  boundKeypairRotateCommand,
  lockCommand,
  locksLsCommand,
  auditLsCommand,
  versionCommand,
  helpCommand,
];

/** Alternative spellings, by the words before them. */
const ALIASES: Record<string, Record<string, string>> = {
  "": { bot: "bots", token: "tokens", del: "rm", lock: "lock", locks: "locks" },
  bots: { list: "ls", remove: "rm", del: "rm", instance: "instances" },
  "bots instances": { list: "ls", get: "show", describe: "show" },
  tokens: { list: "ls", remove: "rm", del: "rm" },
  locks: { list: "ls" },
  audit: { list: "ls" },
};

/** The help text. */
export function usage(): string {
  const rows = COMMANDS.map((c) => [`tctl ${[...c.path, c.args].join(" ").trim()}`, c.summary]);
  const width = Math.max(...rows.map(([u]) => u.length));
  return [
    "Usage: tctl [global flags] COMMAND [flags] [args]",
    "",
    "Administer a Keybound cluster: bots, bound-keypair join tokens, bot instances, locks.",
    "",
    "Commands:",
    ...rows.map(([u, s]) => `  ${u.padEnd(width)}  ${s}`),
    "",
    "Global flags (before or after the command):",
    "  --auth-server HOST:PORT  auth service address (https unless http:// on loopback)",
    "  -i, --identity FILE      admin identity file",
    "  --data-dir DIR           on the auth host: DIR/admin-identity and DIR/auth-server",
    "  --insecure               do not verify the auth service's certificate",
    "  -h, --help               show this help",
    "",
    "Environment: TELEPORT_AUTH_SERVER, TELEPORT_IDENTITY_FILE (used when no flag is given).",
    "",
    "bots add flags: --roles a,b  --logins x,y  --max-session-ttl 12h",
    "  --initial-public-key 'ssh-ed25519 AAAA…' (pre-registered key, no secret)",
    "  --registration-secret S  --recovery-limit N  --recovery-mode standard|relaxed|insecure",
    "",
  ].join("\n");
}

/** Finds the command named by the leading positional words; returns it and its arguments. */
export function resolveCommand(positionals: string[]): { command: CommandSpec; args: string[] } {
  const words: string[] = [];
  let best: { command: CommandSpec; args: string[] } | undefined;
  for (let i = 0; i < positionals.length; i++) {
    const aliases = ALIASES[words.join(" ")] ?? {};
    words.push(aliases[positionals[i]] ?? positionals[i]);
    const command = COMMANDS.find((c) => c.path.join(" ") === words.join(" "));
    if (command) best = { command, args: positionals.slice(i + 1) };
    if (!COMMANDS.some((c) => c.path.slice(0, words.length).join(" ") === words.join(" "))) break;
  }
  if (best) return best;
  const known = [...new Set(COMMANDS.map((c) => c.path[0]))].join(", ");
  if (positionals.length === 0) throw new UsageError(`missing command (commands: ${known})`);
  const prefix = COMMANDS.filter((c) =>
    c.path[0] === (ALIASES[""][positionals[0]] ?? positionals[0])
  );
  if (prefix.length > 0) {
    const subs = prefix.map((c) => c.path.slice(1).join(" ")).join(", ");
    throw new UsageError(`"${positionals.join(" ")}": expected one of: ${subs}`);
  }
  throw new UsageError(`unknown command "${positionals[0]}" (commands: ${known})`);
}

/** Runs tctl with parsed positionals and flags. Throws on failure. */
export async function runTctl(
  positionals: string[],
  flags: TctlFlags,
  ctx: TctlContext,
): Promise<void> {
  if (flags.help === true || positionals.length === 0) {
    ctx.out(usage());
    return;
  }
  const { command, args } = resolveCommand(positionals);
  const name = command.path.join(" ");
  for (const [flag, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    if (!GLOBAL_FLAGS.includes(flag as never) && !command.flags.includes(flag as never)) {
      throw new UsageError(`${name}: flag --${flag} is not accepted here`);
    }
  }
  const [min, max] = command.arity;
  if (args.length < min || args.length > max) {
    const expected = command.args ? ` ${command.args}` : " no arguments";
    throw new UsageError(`usage: tctl ${name}${expected}`);
  }
  await command.run(ctx, args, flags);
}

/** The one line tctl prints on failure (without the `ERROR: ` prefix). */
export function describeError(err: unknown): string {
  return errorText(err).split("\n")[0];
}
