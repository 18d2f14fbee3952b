/**
 * `tctl bots ls|add|rm` and `tctl bots instances ls|show`.
 *
 * `bots add` creates the bot and, since Keybound only joins with
 * `bound_keypair`, a bound-keypair token of the same name: with a generated
 * registration secret, or with `--initial-public-key` a pre-registered key.
 *
 * @module
 */
import { botUserName } from "../../protocol/subject.ts";
import { isKeyboundError } from "../../errors.ts";
import { type Bot, Duration, RecoveryMode, type Token } from "../../resources/schemas.ts";
import { boundKeypairToken } from "../../resources/token_rules.ts";
import { parseResourceOf } from "../../resources/validate.ts";
import { formatResourcesJson } from "../../resources/yaml.ts";
import type { AdminApi } from "../api_client.ts";
import { type CommandSpec, outputFormat, UsageError } from "./command.ts";
import { listValues, type TctlFlags } from "./options.ts";
import { botInstanceDetails, botInstancesTable, botsTable, recoverySummary } from "./text.ts";

/** `tctl bots ls`. */
export const botsLsCommand: CommandSpec = {
  path: ["bots", "ls"],
  args: "",
  arity: [0, 0],
  summary: "list bots (--format text|json)",
  flags: ["format"],
  async run(ctx, _args, flags) {
    const format = outputFormat(flags, ["text", "json"], "text");
    const bots = await (await ctx.api()).list("bot");
    if (format === "json") return ctx.out(formatResourcesJson(bots));
    ctx.out(botsTable(bots));
    ctx.out("\nTo list bot instances, run: tctl bots instances ls\n");
  },
};

function buildBot(name: string, flags: TctlFlags): Bot {
  const ttl = flags.maxSessionTtl;
  if (ttl !== undefined && !Duration.safeParse(ttl).success) {
    throw new UsageError(`--max-session-ttl: invalid duration "${ttl}" (examples: 1h, 12h, 168h)`);
  }
  const logins = listValues(flags.logins);
  return parseResourceOf("bot", {
    kind: "bot",
    version: "v1",
    metadata: { name },
    spec: {
      roles: listValues(flags.roles),
      traits: logins.length > 0 ? [{ name: "logins", values: logins }] : [],
      ...(ttl === undefined ? {} : { max_session_ttl: ttl }),
    },
  });
}

function buildToken(name: string, flags: TctlFlags): Token {
  const limitText = flags.recoveryLimit;
  const limit = limitText === undefined ? 1 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 0 || limit > 0xffff_ffff) {
    throw new UsageError(`--recovery-limit: expected a non-negative integer, got "${limitText}"`);
  }
  const mode = flags.recoveryMode ?? "standard";
  if (!RecoveryMode.safeParse(mode).success) {
    throw new UsageError(`--recovery-mode: expected standard, relaxed or insecure, got "${mode}"`);
  }
  const key = flags.initialPublicKey;
  const secret = flags.registrationSecret;
  if (key !== undefined && secret !== undefined) {
    throw new UsageError("--initial-public-key and --registration-secret are mutually exclusive");
  }
  return parseResourceOf(
    "token",
    boundKeypairToken(name, name, {
      onboarding: {
        ...(key === undefined ? {} : { initial_public_key: key.trim() }),
        ...(secret === undefined ? {} : { registration_secret: secret }),
      },
      recovery: { limit, mode: mode as RecoveryMode },
    }),
  );
}

async function assertRolesExist(api: AdminApi, roles: string[]): Promise<void> {
  if (roles.length === 0) return;
  const known = new Set((await api.list("role")).map((r) => r.metadata.name));
  const missing = roles.filter((r) => !known.has(r));
  if (missing.length > 0) {
    throw new UsageError(
      `--roles: role${missing.length > 1 ? "s" : ""} ${
        missing.map((r) => `"${r}"`).join(", ")
      } not found; create ${missing.length > 1 ? "them" : "it"} first with tctl create`,
    );
  }
}

async function assertTokenAbsent(api: AdminApi, name: string): Promise<void> {
  try {
    await api.get("token", name);
  } catch (e) {
    if (isKeyboundError(e, "NOT_FOUND")) return;
    throw e;
  }
  throw new UsageError(
    `token "${name}" already exists; remove it (tctl tokens rm ${name}) or choose another bot name`,
  );
}

/** The `auth_server` value tbot needs to reach the same auth service. */
function tbotAddress(baseUrl: string): string {
  return baseUrl.startsWith("https://") ? baseUrl.slice("https://".length) : baseUrl;
}

/** A tbot.yaml that joins with `token`; the secret line only on the secret path. */
export function sampleTbotYaml(
  address: string,
  token: string,
  caPin: string | undefined,
  secret: string | undefined,
): string {
  return [
    "version: v2",
    `auth_server: ${address}`,
    "onboarding:",
    "  join_method: bound_keypair",
    `  token: ${token}`,
    ...(caPin ? ["  ca_pins:", `    - ${caPin}`] : []),
    ...(secret ? ["  bound_keypair:", `    registration_secret: ${secret}`] : []),
    "storage:",
    "  type: directory",
    "  path: /var/lib/teleport/bot",
    "outputs: []",
    "",
  ].join("\n");
}

/** `tctl bots add NAME`. */
export const botsAddCommand: CommandSpec = {
  path: ["bots", "add"],
  args: "NAME",
  arity: [1, 1],
  summary: "create a bot and its bound_keypair join token of the same name",
  flags: [
    "roles",
    "logins",
    "max-session-ttl",
    "initial-public-key",
    "registration-secret",
    "recovery-limit",
    "recovery-mode",
    "format",
  ],
  async run(ctx, [name], flags) {
    const format = outputFormat(flags, ["text", "json"], "text");
    const bot = buildBot(name, flags);
    const token = buildToken(name, flags);
    const api = await ctx.api();
    await assertRolesExist(api, bot.spec.roles);
    await assertTokenAbsent(api, name);
    // Both or neither: the server validates both, then commits them together.
    const [createdBot, createdToken] = await api.putAll([bot, token], "create") as [Bot, Token];
    if (format === "json") {
      return ctx.out(JSON.stringify({ bot: createdBot, token: createdToken }, null, 4) + "\n");
    }
    const status = await api.status();
    const secret = createdToken.status?.bound_keypair?.registration_secret;
    const key = createdToken.spec.bound_keypair.onboarding.initial_public_key;
    const lines = [
      `The bot "${name}" has been created (user ${
        createdBot.status?.user_name ?? botUserName(name)
      }).`,
      `Join token "${name}": bound_keypair, recovery ${recoverySummary(createdToken)}.`,
      key ? `Pre-registered public key: ${key}` : `Registration secret: ${secret ?? "(none)"}`,
      "",
      key
        ? "On the bot host, use the keypair whose public key you registered, and this tbot.yaml:"
        : "On the bot host, use this tbot.yaml (the secret is single-use):",
      "",
    ];
    ctx.out(
      lines.join("\n") + "\n" +
        sampleTbotYaml(tbotAddress(api.baseUrl), name, status.ca_pin, key ? undefined : secret),
    );
  },
};

/** `tctl bots rm NAME`. */
export const botsRmCommand: CommandSpec = {
  path: ["bots", "rm"],
  args: "NAME",
  arity: [1, 1],
  summary: "delete a bot (its tokens and instances stay; remove them with tctl rm)",
  flags: [],
  async run(ctx, [name]) {
    await (await ctx.api()).delete("bot", name);
    ctx.out(`Bot "${name}" deleted successfully.\n`);
  },
};

/** `tctl bots instances ls [BOT]`. */
export const botInstancesLsCommand: CommandSpec = {
  path: ["bots", "instances", "ls"],
  args: "[BOT]",
  arity: [0, 1],
  summary: "list bot instances, optionally of one bot (--format text|json)",
  flags: ["format"],
  async run(ctx, [bot], flags) {
    const format = outputFormat(flags, ["text", "json"], "text");
    const all = await (await ctx.api()).list("bot_instance");
    const instances = bot === undefined ? all : all.filter((i) => i.spec.bot_name === bot);
    if (format === "json") return ctx.out(formatResourcesJson(instances));
    ctx.out(botInstancesTable(instances));
  },
};

/** `tctl bots instances show BOT/UUID`. */
export const botInstancesShowCommand: CommandSpec = {
  path: ["bots", "instances", "show"],
  args: "BOT/UUID",
  arity: [1, 1],
  summary: "show one bot instance: authentications, latest heartbeat, generation",
  flags: ["format"],
  async run(ctx, [ref], flags) {
    const format = outputFormat(flags, ["text", "json"], "text");
    if (!/^[^/]+\/[^/]+$/.test(ref)) {
      throw new UsageError(`expected BOT/UUID (as tctl bots instances ls prints it), got "${ref}"`);
    }
    const instance = await (await ctx.api()).get("bot_instance", ref);
    if (format === "json") return ctx.out(formatResourcesJson([instance]));
    ctx.out(botInstanceDetails(instance));
  },
};
