/**
 * The generic resource commands: `create`, `get` and `rm`.
 *
 * @module
 */
import { errorMessage, ServerError } from "../../errors.ts";
import { MAX_PUT_RESOURCES } from "../../protocol/admin.ts";
import { MAX_BODY_BYTES } from "../../protocol/body_limit.ts";
import type { AnyResource, CreatableResource } from "../../resources/validate.ts";
import {
  documentLabel,
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
    // Every document is validated here, then the whole file is one write
    // (POST /v1/resources, one compare-and-swap): a refusal of any item by
    // the server leaves nothing written, never the items before it.
    const docs = parseResourceYaml(text, label);
    const resources = docs.map((d) => d.resource as CreatableResource);
    const mode = flags.force ? "upsert" : "create";
    if (resources.length > MAX_PUT_RESOURCES) {
      throw new UsageError(
        `${label}: ${resources.length} resources, more than the ${MAX_PUT_RESOURCES} ` +
          "one create writes together; split the file (nothing was written)",
      );
    }
    const bytes = new TextEncoder().encode(JSON.stringify({ resources, mode })).length;
    if (bytes > MAX_BODY_BYTES) {
      throw new UsageError(
        `${label}: the request would be ${bytes} bytes, more than the auth service's ` +
          `${MAX_BODY_BYTES}-byte request limit; split the file (nothing was written)`,
      );
    }
    const api = await ctx.api();
    let created: boolean[];
    try {
      ({ created } = await api.putAll(resources, mode));
    } catch (e) {
      // A refusal by the server (4xx) is before its one commit: nothing was
      // written. Which item it refused comes as details.path `resources[i]...`.
      if (!(e instanceof ServerError) || e.status >= 500) throw e;
      const at = /^resources\[(\d+)\]/.exec(String(e.details?.path ?? ""));
      const doc = at ? docs[Number(at[1])] : docs.length === 1 ? docs[0] : undefined;
      const exists = e.code === "ALREADY_EXISTS" ? " (use -f to overwrite)" : "";
      withContext(
        doc ? `${label}: ${documentLabel(doc)}` : label,
        e,
        `${exists}; nothing was written`,
      );
    }
    for (const [i, r] of resources.entries()) {
      const verb = created[i] ? "created" : "updated";
      ctx.out(`${r.kind} "${r.metadata.name}" has been ${verb}\n`);
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
