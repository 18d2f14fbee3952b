/**
 * `tctl edit KIND/NAME`: the resource's YAML in the admin's editor, saved
 * with one compare-and-swap on the revision that was read, so a change made
 * meanwhile (a bot joining, another admin) is refused instead of lost.
 *
 * @module
 */
import { isKeyboundError, KeyboundError } from "../../errors.ts";
import { CREATABLE_KINDS } from "../../resources/schemas.ts";
import type { CreatableResource } from "../../resources/validate.ts";
import { formatResourcesYaml, parseResourceYaml } from "../../resources/yaml.ts";
import { type CommandSpec, errorText, UsageError } from "./command.ts";
import { parseResourceRef } from "./kinds.ts";

/** The resource without its revision, for "did the admin change anything?". */
function content(r: CreatableResource): string {
  const { revision: _revision, ...metadata } = r.metadata;
  return JSON.stringify({ ...r, metadata });
}

/** `tctl edit KIND/NAME`. */
export const editCommand: CommandSpec = {
  path: ["edit"],
  args: "KIND/NAME",
  arity: [1, 1],
  summary: "edit a resource in $VISUAL/$EDITOR; saved only if nobody changed it meanwhile",
  flags: [],
  async run(ctx, [refText]) {
    const ref = parseResourceRef(refText);
    if (!ref.name) {
      throw new UsageError(`expected KIND/NAME (e.g. token/example), got "${refText}"`);
    }
    if (!(ref.kind in CREATABLE_KINDS)) {
      throw new UsageError(`${ref.kind} resources are written by the auth service, not edited`);
    }
    const kind = ref.kind as keyof typeof CREATABLE_KINDS;
    const label = `${kind} "${ref.name}"`;
    const api = await ctx.api();
    const current = await api.get(kind, ref.name, { forUpdate: true }) as CreatableResource;
    const original = formatResourcesYaml([current]);
    const edit = await ctx.editText(original);
    const keep = (why: string, code: KeyboundError["code"] = "BAD_PARAMETER"): never => {
      throw new KeyboundError(code, `${why}; nothing was saved; your text is kept in ${edit.path}`);
    };
    let docs;
    try {
      docs = parseResourceYaml(edit.text, edit.path, { kinds: [kind] });
    } catch (e) {
      return keep(errorText(e));
    }
    if (docs.length !== 1) {
      keep(`${edit.path}: expected exactly one resource, found ${docs.length}`);
    }
    const edited = docs[0].resource as CreatableResource;
    if (edited.metadata.name !== ref.name) {
      keep(`${edit.path}: metadata.name: renaming is not supported (was "${ref.name}")`);
    }
    if (content(edited) === content(current)) {
      await edit.discard();
      return ctx.out(`${label} unchanged; nothing saved\n`);
    }
    // Always the revision read above, even if the admin deleted or changed the line.
    edited.metadata.revision = current.metadata.revision;
    try {
      await api.put(edited, "upsert");
    } catch (e) {
      if (isKeyboundError(e, "CONFLICT")) {
        keep(
          `${label} was changed by someone else while you edited it (re-run tctl edit)`,
          "CONFLICT",
        );
      }
      keep(`${label}: ${errorText(e)}`, isKeyboundError(e) ? e.code : "BAD_PARAMETER");
    }
    await edit.discard();
    ctx.out(`${label} has been updated\n`);
  },
};
