/**
 * `tctl edit`'s I/O: the admin's text in a private temp file, opened in
 * `$VISUAL`/`$EDITOR` (else `vi`) with the terminal attached.
 *
 * @module
 */
import { KeyboundError } from "../../src/errors.ts";
import type { EditSession } from "../../src/cli/tctl/context.ts";
import { writeFileAtomic } from "./fs.ts";

/** The editor command line: `$VISUAL`, else `$EDITOR`, else `vi`. */
export function editorCommand(env: { get(name: string): string | undefined } = Deno.env): string {
  return env.get("VISUAL") || env.get("EDITOR") || "vi";
}

/**
 * Writes `text` to `resource.yaml` in a new 0700 directory (the file 0600:
 * it may hold a registration secret), runs the editor on it through `sh`
 * (so `EDITOR="code --wait"` works) and reads it back.
 */
export async function editInEditor(text: string): Promise<EditSession> {
  const dir = await Deno.makeTempDir({ prefix: "tctl-edit-" });
  await Deno.chmod(dir, 0o700);
  const path = `${dir}/resource.yaml`;
  await writeFileAtomic(path, text, { mode: 0o600 });
  const editor = editorCommand();
  const status = await new Deno.Command("sh", {
    args: ["-c", `${editor} "$1"`, "sh", path],
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!status.success) {
    throw new KeyboundError(
      "BAD_PARAMETER",
      `the editor (${editor}) exited with status ${status.code}; nothing was saved; ` +
        `your text is in ${path}`,
    );
  }
  return {
    path,
    text: await Deno.readTextFile(path),
    discard: () => Deno.remove(dir, { recursive: true }),
  };
}
