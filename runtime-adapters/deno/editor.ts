/**
 * `tctl edit`'s I/O: the admin's text in a private temp file, opened in
 * `$VISUAL`/`$EDITOR` (else `vi`) with the terminal attached.
 *
 * @module
 */
import { ConfigError, KeyboundError } from "../../src/errors.ts";
import type { EditSession } from "../../src/cli/tctl/context.ts";
import { decidingEnv, type EnvReader } from "../../src/cli/env.ts";
import { writeFileAtomic } from "./fs.ts";
import { envReader, missingPermission, readEnv } from "./permissions.ts";

/** The shell that runs the editor's command line, by full path: --allow-run names it so. */
const SHELL = "/bin/sh";

/**
 * The editor command line: `$VISUAL`, else `$EDITOR`, else `vi`. A variable
 * this process may not read (a narrowed --allow-env) is refused by name, not
 * taken for unset: that would open another editor than the admin's.
 */
export function editorCommand(reader: EnvReader = envReader("tctl")): string {
  const about = { decides: "which editor tctl edit opens", allow: ["VISUAL", "EDITOR"] };
  return decidingEnv(reader, "VISUAL", about) || decidingEnv(reader, "EDITOR", about) || "vi";
}

/**
 * Writes `text` to `resource.yaml` in a new 0700 directory (the file 0600:
 * it may hold a registration secret), runs the editor on it through `sh`
 * (so `EDITOR="code --wait"` works) and reads it back.
 */
export async function editInEditor(text: string): Promise<EditSession> {
  const editor = editorCommand();
  // Asked first, before anything is written: outside a narrowed --allow-read,
  // --allow-write or --allow-run, Deno would prompt a terminal, with the resource's
  // text already in a temp file (the atomic write's rename and the read back need
  // --allow-read of it). TMPDIR unreadable: the system's, where Deno would put it
  // without TMPDIR.
  const tmp = readEnv("TMPDIR") || "/tmp";
  const missing = missingPermission({ name: "write", path: tmp }, "tctl") ??
    missingPermission({ name: "read", path: tmp }, "tctl") ??
    missingPermission({ name: "run", command: SHELL }, "tctl");
  if (missing !== undefined) {
    throw new ConfigError(`tctl edit: ${missing}; nothing was changed`);
  }
  const dir = await Deno.makeTempDir({ dir: tmp, prefix: "tctl-edit-" });
  await Deno.chmod(dir, 0o700);
  const path = `${dir}/resource.yaml`;
  await writeFileAtomic(path, text, { mode: 0o600 });
  const status = await new Deno.Command(SHELL, {
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
