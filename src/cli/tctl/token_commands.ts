/**
 * `tctl tokens add|ls|rm`, `tctl bots instances add` and
 * `tctl bound-keypair rotate`.
 *
 * @module
 */
import { isKeyboundError, NotFoundError } from "../../errors.ts";
import { ResourceName } from "../../resources/schemas.ts";
import { formatResourcesJson, formatResourcesYaml } from "../../resources/yaml.ts";
import type { AdminApi } from "../api_client.ts";
import { type CommandSpec, outputFormat, UsageError } from "./command.ts";
import type { TctlContext } from "./context.ts";
import { buildJoinToken, newTokenName, printJoinToken } from "./join_token.ts";
import type { TctlFlags } from "./options.ts";
import { tokensTable } from "./text.ts";
import { nextPageHint, pageFlags } from "./paging.ts";

/** The flags of a command that creates one bound-keypair token. */
const NEW_TOKEN_FLAGS = [
  "recovery-limit",
  "recovery-mode",
  "initial-public-key",
  "ttl",
  "format",
] as const;

/**
 * Checks every flag, then creates one token with a generated name for
 * `botName` (one create on the server) and prints it.
 */
async function addJoinToken(
  ctx: TctlContext,
  flags: TctlFlags,
  botName: string,
  check: (api: AdminApi) => Promise<void>,
): Promise<void> {
  const format = outputFormat(flags, ["text", "json"], "text");
  const token = buildJoinToken(newTokenName(), botName, flags, ctx.now());
  const api = await ctx.api();
  await check(api);
  const created = (await api.put(token, "create")).item;
  await printJoinToken(ctx, api, created, format);
}

/** `tctl tokens add --type=bound_keypair --bot-name B`. */
export const tokensAddCommand: CommandSpec = {
  path: ["tokens", "add"],
  args: "",
  arity: [0, 0],
  summary: "create a bound_keypair join token for a bot; prints it and a tbot start line",
  flags: ["type", "bot-name", ...NEW_TOKEN_FLAGS],
  run(ctx, _args, flags) {
    if (flags.type === undefined) throw new UsageError("--type: required (bound_keypair)");
    if (flags.type !== "bound_keypair") {
      throw new UsageError(
        `--type: unsupported join method "${flags.type}" (Keybound joins with bound_keypair)`,
      );
    }
    const bot = flags.botName;
    if (bot === undefined) {
      throw new UsageError("--bot-name: required (the bot this token joins as)");
    }
    if (!ResourceName.safeParse(bot).success) {
      throw new UsageError(`--bot-name: "${bot}" is not a valid bot name`);
    }
    return addJoinToken(ctx, flags, bot, () => Promise.resolve());
  },
};

/** `tctl bots instances add BOT`: a token for one more host of an existing bot. */
export const botInstancesAddCommand: CommandSpec = {
  path: ["bots", "instances", "add"],
  args: "BOT",
  arity: [1, 1],
  summary: "create a bound_keypair join token for another host of an existing bot",
  flags: [...NEW_TOKEN_FLAGS],
  run(ctx, [bot], flags) {
    return addJoinToken(ctx, flags, bot, async (api) => {
      try {
        await api.get("bot", bot);
      } catch (e) {
        if (!isKeyboundError(e, "NOT_FOUND")) throw e;
        throw new NotFoundError(
          `bot "${bot}" not found (tctl bots ls lists bots; tctl bots add creates one)`,
        );
      }
    });
  },
};

/** `tctl tokens ls`. */
export const tokensLsCommand: CommandSpec = {
  path: ["tokens", "ls"],
  args: "",
  arity: [0, 0],
  summary: "list join tokens, one page (--limit N, --after CURSOR, --format text|json|yaml)",
  flags: ["format", "limit", "after"],
  async run(ctx, _args, flags) {
    const format = outputFormat(flags, ["text", "json", "yaml"], "text");
    const page = await (await ctx.api()).listPage("token", pageFlags(flags));
    if (format === "json") return ctx.out(formatResourcesJson(page.items));
    if (format === "yaml") return ctx.out(formatResourcesYaml(page.items));
    ctx.out(tokensTable(page.items));
    ctx.out(nextPageHint("tctl tokens ls", page.next));
  },
};

/** `tctl tokens rm NAME`. */
export const tokensRmCommand: CommandSpec = {
  path: ["tokens", "rm"],
  args: "NAME",
  arity: [1, 1],
  summary: "delete a join token",
  flags: [],
  async run(ctx, [name]) {
    await (await ctx.api()).delete("token", name);
    ctx.out(`Token ${name} has been deleted\n`);
  },
};

/** `tctl bound-keypair rotate TOKEN`. */
export const boundKeypairRotateCommand: CommandSpec = {
  path: ["bound-keypair", "rotate"],
  args: "TOKEN",
  arity: [1, 1],
  summary: "request a keypair rotation at the bot's next join (sets rotate_after to now)",
  flags: [],
  async run(ctx, [name]) {
    const token = await (await ctx.api()).rotateToken(name);
    ctx.out(
      `Token "${name}" will rotate its bound keypair at the bot's next join ` +
        `(rotate_after: ${token.spec.bound_keypair.rotate_after}).\n`,
    );
  },
};
