/**
 * `tctl audit ls`: the auth service's audit events, newest first.
 *
 * @module
 */
import { type CommandSpec, outputFormat, UsageError } from "./command.ts";
import { escapeLogText } from "../../util/log.ts";
import { auditTable } from "./text.ts";

/** `tctl audit ls [--type T] [--limit N]`. */
export const auditLsCommand: CommandSpec = {
  path: ["audit", "ls"],
  args: "",
  arity: [0, 0],
  summary:
    "list audit events, newest first (--type T, --limit N, --after CURSOR, --format text|json)",
  flags: ["type", "limit", "after", "format"],
  async run(ctx, _args, flags) {
    const format = outputFormat(flags, ["text", "json"], "text");
    const limitText = flags.limit;
    const limit = limitText === undefined ? undefined : Number(limitText);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
      throw new UsageError(`--limit: expected a positive integer, got "${limitText}"`);
    }
    const page = await (await ctx.api()).audit({ type: flags.type, limit, after: flags.after });
    if (format === "json") return ctx.out(JSON.stringify(page.items, null, 4) + "\n");
    ctx.out(auditTable(page.items));
    if (page.next) ctx.out(`\nMore events: tctl audit ls --after ${escapeLogText(page.next)}\n`);
  },
};
