/**
 * `tctl web enroll | ls | rm`: sign a browser in to the fleet console with a
 * one-time URL, list enrolled browsers, revoke one (docs/browser.md).
 *
 * @module
 */
import { BrowserLabel } from "../../protocol/web.ts";
import { parseDuration } from "../../util/duration.ts";
import { escapeLogText } from "../../util/log.ts";
import { type CommandSpec, outputFormat, UsageError } from "./command.ts";
import { formatTable } from "./table.ts";

/** `--ttl`/`--session-ttl` in whole seconds, or undefined when not given. */
function seconds(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  try {
    return Math.floor(parseDuration(value) / 1000);
  } catch {
    throw new UsageError(`${flag}: invalid duration "${value}" (examples: 10m, 12h)`);
  }
}

/** `tctl web enroll [--ttl 10m] [--session-ttl 12h] [--label NAME]`. */
export const webEnrollCommand: CommandSpec = {
  path: ["web", "enroll"],
  args: "",
  arity: [0, 0],
  summary: "print a one-time URL that signs a browser in to the console (--ttl, --session-ttl)",
  flags: ["ttl", "session-ttl", "label"],
  async run(ctx, _args, flags) {
    if (flags.label !== undefined && !BrowserLabel.safeParse(flags.label).success) {
      throw new UsageError(
        `--label: ${BrowserLabel.safeParse(flags.label).error?.issues[0].message}`,
      );
    }
    const ttl = seconds(flags.ttl, "--ttl");
    const sessionTtl = seconds(flags.sessionTtl, "--session-ttl");
    const api = await ctx.api();
    const r = await api.createEnrollment({
      ...(ttl === undefined ? {} : { ttl_seconds: ttl }),
      ...(sessionTtl === undefined ? {} : { session_ttl_seconds: sessionTtl }),
      ...(flags.label === undefined ? {} : { label: flags.label }),
    });
    // The code rides in the fragment: browsers never send it to a server or a Referer.
    ctx.out(
      `Open this URL in the browser to enroll (once, before ${r.expires}):\n\n` +
        `  ${api.baseUrl}/web/#enroll=${r.code}\n\n` +
        `The browser will be web-${r.browser_id} (revoke: tctl web rm ${r.browser_id}).\n`,
    );
  },
};

/** `tctl web ls`. */
export const webLsCommand: CommandSpec = {
  path: ["web", "ls"],
  args: "",
  arity: [0, 0],
  summary: "list browsers enrolled in the console (--format text|json)",
  flags: ["format"],
  async run(ctx, _args, flags) {
    const format = outputFormat(flags, ["text", "json"], "text");
    const items = await (await ctx.api()).browsers();
    if (format === "json") return ctx.out(JSON.stringify(items, null, 2) + "\n");
    ctx.out(formatTable(
      ["ID", "Label", "User", "Enrolled", "Expires", "By", "From"],
      items.map((b) => [
        b.id,
        b.label ?? "",
        b.username,
        b.enrolled_at,
        b.expires,
        b.enrolled_by,
        b.remote_addr ?? "",
      ]),
    ));
  },
};

/** `tctl web rm ID`. */
export const webRmCommand: CommandSpec = {
  path: ["web", "rm"],
  args: "ID",
  arity: [1, 1],
  summary: "revoke an enrolled browser: its next console call is refused",
  flags: [],
  async run(ctx, args) {
    await (await ctx.api()).revokeBrowser(args[0]);
    ctx.out(`Browser ${escapeLogText(args[0])} has been revoked.\n`);
  },
};
