/**
 * `tctl lock` (create a lock) and `tctl locks ls`. Locks are removed with
 * `tctl rm lock/NAME`.
 *
 * @module
 */
import { randomUuid } from "../../crypto/random.ts";
import { Duration, Timestamp } from "../../resources/schemas.ts";
import { parseResourceOf } from "../../resources/validate.ts";
import { formatResourcesJson } from "../../resources/yaml.ts";
import { parseDuration } from "../../util/duration.ts";
import { type CommandSpec, outputFormat, UsageError } from "./command.ts";
import { locksTable } from "./text.ts";
import { nextPageHint, pageFlags } from "./paging.ts";

/** `tctl locks ls`. */
export const locksLsCommand: CommandSpec = {
  path: ["locks", "ls"],
  args: "",
  arity: [0, 0],
  summary: "list locks, one page (--limit N, --after CURSOR, --format text|json)",
  flags: ["format", "limit", "after"],
  async run(ctx, _args, flags) {
    const format = outputFormat(flags, ["text", "json"], "text");
    const page = await (await ctx.api()).listPage("lock", pageFlags(flags));
    if (format === "json") return ctx.out(formatResourcesJson(page.items));
    ctx.out(locksTable(page.items, ctx.now()));
    ctx.out(nextPageHint("tctl locks ls", page.next));
  },
};

/** `tctl lock --join-token=NAME | --bot-instance-id=ID | --user=NAME`. */
export const lockCommand: CommandSpec = {
  path: ["lock"],
  args: "",
  arity: [0, 0],
  summary: "create a lock (--join-token | --bot-instance-id | --user; --message, --expires, --ttl)",
  flags: ["join-token", "bot-instance-id", "user", "message", "expires", "ttl"],
  async run(ctx, _args, flags) {
    const target = {
      ...(flags.joinToken ? { join_token: flags.joinToken } : {}),
      ...(flags.botInstanceId ? { bot_instance_id: flags.botInstanceId } : {}),
      ...(flags.user ? { user: flags.user } : {}),
    };
    if (Object.keys(target).length === 0) {
      throw new UsageError("lock: pass at least one of --join-token, --bot-instance-id, --user");
    }
    const expiresFlag = flags.expires;
    const ttl = flags.ttl;
    if (expiresFlag !== undefined && ttl !== undefined) {
      throw new UsageError("--expires and --ttl are mutually exclusive");
    }
    if (expiresFlag !== undefined && !Timestamp.safeParse(expiresFlag).success) {
      throw new UsageError(`--expires: expected an RFC 3339 time, got "${expiresFlag}"`);
    }
    if (ttl !== undefined && !Duration.safeParse(ttl).success) {
      throw new UsageError(`--ttl: invalid duration "${ttl}" (examples: 30m, 24h)`);
    }
    const expires = expiresFlag ??
      (ttl === undefined
        ? undefined
        : new Date(ctx.now().getTime() + parseDuration(ttl)).toISOString());
    const message = flags.message;
    const lock = parseResourceOf("lock", {
      kind: "lock",
      version: "v2",
      metadata: { name: randomUuid() },
      spec: {
        target,
        ...(message === undefined ? {} : { message }),
        ...(expires === undefined ? {} : { expires }),
      },
    });
    await (await ctx.api()).put(lock, "create");
    ctx.out(`Created a lock with name "${lock.metadata.name}".\n`);
  },
};
