/**
 * `tctl audit ls`: the auth service's audit events, newest first.
 *
 * @module
 */
import { type CommandSpec, outputFormat } from "./command.ts";
import { nextPageHint, pageFlags } from "./paging.ts";
import { escapeLogText } from "../../util/log.ts";
import { auditTable } from "./text.ts";

/** `tctl audit ls [--type T] [--limit N] [--after CURSOR]`. */
export const auditLsCommand: CommandSpec = {
  path: ["audit", "ls"],
  args: "",
  arity: [0, 0],
  summary:
    "list audit events, newest first (--type T, --limit N, --after CURSOR, --format text|json)",
  flags: ["type", "limit", "after", "format"],
  async run(ctx, _args, flags) {
    const format = outputFormat(flags, ["text", "json"], "text");
    const page = await (await ctx.api()).audit({ type: flags.type, ...pageFlags(flags) });
    if (format === "json") return ctx.out(JSON.stringify(page.items, null, 4) + "\n");
    ctx.out(auditTable(page.items));
    const type = flags.type ? ` --type ${escapeLogText(flags.type)}` : "";
    ctx.out(nextPageHint(`tctl audit ls${type}`, page.next));
  },
};
