/**
 * The generic resource commands: `create`, `get` and `rm`.
 *
 * @module
 */
import { errorMessage } from "../../errors.ts";
import type { AnyResource, CreatableResource } from "../../resources/validate.ts";
import {
  formatResourcesJson,
  formatResourcesYaml,
  parseResourceYaml,
} from "../../resources/yaml.ts";
import { type CommandSpec, outputFormat, UsageError, withContext } from "./command.ts";
import { parseResourceRef } from "./kinds.ts";
import { resourcesText } from "./text.ts";

/** `tctl create [-f] FILE`. */
export const createCommand: CommandSpec = {
  path: ["create"],
  args: "FILE",
  arity: [1, 1],
  summary:
    "create resources from a file as tctl get prints it, YAML or JSON (- for stdin); -f overwrites existing ones",
  flags: ["force"],
  async run(ctx, [file], flags) {
    const label = file === "-" ? "stdin" : file;
    let text: string;
    try {
      text = await ctx.readTextFile(file);
    } catch (e) {
      throw new UsageError(`cannot read ${label}: ${errorMessage(e)}`);
    }
    // Every document is validated before the first one is sent.
    const docs = parseResourceYaml(text, label);
    const api = await ctx.api();
    const mode = flags.force ? "upsert" : "create";
    for (const doc of docs) {
      const resource = doc.resource as CreatableResource;
      let created: boolean;
      try {
        ({ created } = await api.put(resource, mode));
      } catch (e) {
        const exists = (e as { code?: string }).code === "ALREADY_EXISTS";
        const where = `document ${doc.index}${doc.item ? `, item ${doc.item}` : ""}`;
        withContext(`${label}: ${where}`, e, exists ? " (use -f to overwrite)" : "");
      }
      const verb = created ? "created" : "updated";
      ctx.out(`${resource.kind} "${resource.metadata.name}" has been ${verb}\n`);
    }
  },
};

/** `tctl get KIND[/NAME]`: YAML by default, JSON (always an array) or a table. */
export const getCommand: CommandSpec = {
  path: ["get"],
  args: "KIND[/NAME]",
  arity: [1, 1],
  summary: "print resources (--format yaml|json|text); bot instances as bot_instance/BOT/UUID",
  flags: ["format"],
  async run(ctx, [refText], flags) {
    const format = outputFormat(flags, ["yaml", "json", "text"], "yaml");
    const ref = parseResourceRef(refText);
    const api = await ctx.api();
    // YAML and JSON are what an operator edits and writes back with `create
    // -f` (docs/deployment.md): printed as the server sent them, so a field
    // this tctl does not know reaches `create -f`, which refuses it, instead
    // of being dropped here and deleted from the server's copy by the write.
    // The table shows the fields it knows.
    const asSent = format !== "text";
    let items: AnyResource[];
    if (ref.kind === "bot_instance" && ref.name !== undefined && !ref.name.includes("/")) {
      // `bot_instance/BOT`: every instance of one bot.
      items = await api.list("bot_instance", { bot: ref.name }, { asSent });
    } else {
      items = ref.name === undefined
        ? await api.list(ref.kind, {}, { asSent })
        : [await api.get(ref.kind, ref.name, { asSent })];
    }
    if (format === "json") ctx.out(formatResourcesJson(items));
    else if (format === "yaml") ctx.out(formatResourcesYaml(items));
    else ctx.out(resourcesText(ref.kind, items, ctx.now()));
  },
};

/** `tctl rm KIND/NAME`. */
export const rmCommand: CommandSpec = {
  path: ["rm"],
  args: "KIND/NAME",
  arity: [1, 1],
  summary: "delete a resource (bot instances as bot_instance/BOT/UUID)",
  flags: [],
  async run(ctx, [refText]) {
    const ref = parseResourceRef(refText);
    if (ref.name === undefined) throw new UsageError(`rm: expected KIND/NAME, got "${refText}"`);
    await (await ctx.api()).delete(ref.kind, ref.name);
    ctx.out(`${ref.kind} "${ref.name}" has been deleted\n`);
  },
};
