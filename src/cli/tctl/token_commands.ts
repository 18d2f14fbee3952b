/**
 * `tctl tokens ls|rm` and `tctl bound-keypair rotate`.
 *
 * @module
 */
import { formatResourcesJson, formatResourcesYaml } from "../../resources/yaml.ts";
import { type CommandSpec, outputFormat } from "./command.ts";
import { tokensTable } from "./text.ts";

/** `tctl tokens ls`. */
export const tokensLsCommand: CommandSpec = {
  path: ["tokens", "ls"],
  args: "",
  arity: [0, 0],
  summary: "list join tokens (--format text|json|yaml)",
  flags: ["format"],
  async run(ctx, _args, flags) {
    const format = outputFormat(flags, ["text", "json", "yaml"], "text");
    const tokens = await (await ctx.api()).list("token");
    if (format === "json") return ctx.out(formatResourcesJson(tokens));
    if (format === "yaml") return ctx.out(formatResourcesYaml(tokens));
    ctx.out(tokensTable(tokens));
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
