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
import { type Bot, type BotInstance, Duration, type Token } from "../../resources/schemas.ts";
import { parseResourceOf } from "../../resources/validate.ts";
import { formatResourcesJson } from "../../resources/yaml.ts";
import type { AdminApi } from "../api_client.ts";
import { type CommandSpec, outputFormat, UsageError, withContext } from "./command.ts";
import { buildJoinToken, tbotAddress } from "./join_token.ts";
import { listValues, type TctlFlags } from "./options.ts";
import { MAX_PAGE, nextPageHint, pageFlags } from "./paging.ts";
import { botInstanceDetails, botInstancesTable, botsTable, recoverySummary } from "./text.ts";

/** `tctl bots ls`. */
export const botsLsCommand: CommandSpec = {
  path: ["bots", "ls"],
  args: "",
  arity: [0, 0],
  summary: "list bots, one page (--limit N, --after CURSOR, --format text|json)",
  flags: ["format", "limit", "after"],
  async run(ctx, _args, flags) {
    const format = outputFormat(flags, ["text", "json"], "text");
    const page = await (await ctx.api()).listPage("bot", pageFlags(flags));
    if (format === "json") return ctx.out(formatResourcesJson(page.items));
    ctx.out(botsTable(page.items));
    ctx.out(nextPageHint("tctl bots ls", page.next));
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

/** Refuses roles the cluster does not have, naming `flag`. */
export async function assertRolesExist(
  api: AdminApi,
  roles: string[],
  flag = "--roles",
): Promise<void> {
  if (roles.length === 0) return;
  const known = new Set((await api.list("role")).map((r) => r.metadata.name));
  const missing = roles.filter((r) => !known.has(r));
  if (missing.length > 0) {
    throw new UsageError(
      `${flag}: role${missing.length > 1 ? "s" : ""} ${
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
    const token = buildJoinToken(name, name, flags, ctx.now());
    const api = await ctx.api();
    await assertRolesExist(api, bot.spec.roles);
    await assertTokenAbsent(api, name);
    // Both or neither: the server validates both, then commits them together.
    const [createdBot, createdToken] = (await api.putAll([bot, token], "create")).items as [
      Bot,
      Token,
    ];
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

/**
 * `--set-traits` values as traits: `k=v1,v2,k2=v3` (a word without `=`
 * continues the previous trait); repeatable. Only empty values: no traits.
 */
export function parseTraits(values: string[]): Bot["spec"]["traits"] {
  const traits: Bot["spec"]["traits"] = [];
  for (const word of listValues(values)) {
    const eq = word.indexOf("=");
    if (eq < 0) {
      const last = traits.at(-1);
      if (!last) throw new UsageError(`--set-traits: expected KEY=VALUE, got "${word}"`);
      last.values.push(word);
      continue;
    }
    const name = word.slice(0, eq).trim();
    if (name === "") throw new UsageError(`--set-traits: missing trait name in "${word}"`);
    const value = word.slice(eq + 1).trim();
    const existing = traits.find((t) => t.name === name);
    const target = existing ?? { name, values: [] };
    if (!existing) traits.push(target);
    if (value !== "") target.values.push(value);
  }
  return traits;
}

/** `tctl bots update NAME`: one compare-and-swap on the bot's revision. */
export const botsUpdateCommand: CommandSpec = {
  path: ["bots", "update"],
  args: "NAME",
  arity: [1, 1],
  summary: "change a bot's roles, traits or max session TTL",
  flags: ["add-roles", "set-roles", "set-traits", "max-session-ttl"],
  async run(ctx, [name], flags) {
    const { addRoles, setRoles, setTraits, maxSessionTtl: ttl } = flags;
    if (
      addRoles === undefined && setRoles === undefined && setTraits === undefined &&
      ttl === undefined
    ) {
      throw new UsageError(
        "nothing to update: pass --add-roles, --set-roles, --set-traits or --max-session-ttl",
      );
    }
    if (addRoles !== undefined && setRoles !== undefined) {
      throw new UsageError("--add-roles and --set-roles are mutually exclusive");
    }
    if (ttl !== undefined && !Duration.safeParse(ttl).success) {
      throw new UsageError(
        `--max-session-ttl: invalid duration "${ttl}" (examples: 1h, 12h, 168h)`,
      );
    }
    const traits = setTraits === undefined ? undefined : parseTraits(setTraits);
    const api = await ctx.api();
    const newRoles = listValues(addRoles ?? setRoles);
    await assertRolesExist(api, newRoles, addRoles !== undefined ? "--add-roles" : "--set-roles");
    const bot = await api.get("bot", name, { forUpdate: true });
    const roles = setRoles !== undefined
      ? newRoles
      : [...new Set([...bot.spec.roles, ...newRoles])];
    const updated = parseResourceOf("bot", {
      ...bot,
      // The revision read above: the server refuses the write if the bot changed since.
      metadata: bot.metadata,
      spec: {
        ...bot.spec,
        roles,
        ...(traits === undefined ? {} : { traits }),
        ...(ttl === undefined ? {} : { max_session_ttl: ttl }),
      },
    });
    try {
      await api.put(updated, "upsert");
    } catch (e) {
      withContext(`bot "${name}" was not updated`, e);
    }
    ctx.out(
      `Bot "${name}" has been updated: roles ${roles.join(", ") || "(none)"}` +
        (traits === undefined
          ? ""
          : `, traits ${traits.map((t) => t.name).join(", ") || "(none)"}`) +
        (ttl === undefined ? "" : `, max session TTL ${ttl}`) + ".\n",
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
  summary:
    "list bot instances, optionally of one bot, one page (--search S, --limit N, --after CURSOR, --format text|json)",
  flags: ["format", "search", "limit", "after"],
  async run(ctx, [bot], flags) {
    const format = outputFormat(flags, ["text", "json"], "text");
    const { limit, after } = pageFlags(flags);
    const search = flags.search?.toLowerCase();
    const api = await ctx.api();
    const page = search === undefined
      ? await api.listPage("bot_instance", { limit, after, bot })
      : await searchInstances(api, search, { limit, after, bot });
    if (format === "json") return ctx.out(formatResourcesJson(page.items));
    ctx.out(botInstancesTable(page.items));
    const command = "tctl bots instances ls" + (bot === undefined ? "" : ` ${bot}`) +
      (flags.search === undefined ? "" : ` --search ${JSON.stringify(flags.search)}`);
    ctx.out(nextPageHint(command, page.next));
  },
};

/**
 * Up to `limit` instances whose row contains `search`. The server does not
 * search, so this reads pages until enough rows match; `next` is the last row
 * shown, so the next page resumes right after it.
 */
async function searchInstances(
  api: AdminApi,
  search: string,
  o: { limit: number; after?: string; bot?: string },
): Promise<{ items: BotInstance[]; next?: string }> {
  const items: BotInstance[] = [];
  let after = o.after;
  for (;;) {
    const read = await api.listPage("bot_instance", { limit: MAX_PAGE, after, bot: o.bot });
    let i = 0;
    for (; i < read.items.length && items.length < o.limit; i++) {
      if (instanceSearchText(read.items[i]).includes(search)) items.push(read.items[i]);
    }
    if (items.length === o.limit) {
      const more = i < read.items.length || read.next !== undefined;
      return more ? { items, next: items[items.length - 1].metadata.name } : { items };
    }
    if (read.next === undefined) return { items };
    after = read.next;
  }
}

/** What `--search` matches: every column `bots instances ls` shows, lowercased. */
function instanceSearchText(i: BotInstance): string {
  return botInstancesTable([i]).split("\n").slice(2).join(" ").toLowerCase();
}

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
