/**
 * The Deno side of output sharing: `setfacl` (Debian package `acl`),
 * `chgrp` and `chmod`. Which entries and which method are decided in
 * `src/agent/sharing/`.
 *
 * @module
 */
import type { FileSharing } from "../../src/agent/sharing/mod.ts";
import { HOOK_PATH } from "../../src/agent/hooks/mod.ts";
import { programToRun } from "./permissions.ts";

async function run(program: string, args: string[]): Promise<{ ok: boolean; stderr: string }> {
  // Found once and asked first: outside a narrowed --allow-run, a terminal would be
  // prompted (./permissions.ts). Not found: NotFound, as from Deno.Command.
  const { command, missing } = programToRun(program, HOOK_PATH);
  if (missing) throw new Error(missing);
  const out = await new Deno.Command(command, {
    args,
    env: { PATH: HOOK_PATH, LC_ALL: "C" },
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  return { ok: out.success, stderr: new TextDecoder().decode(out.stderr).trim() };
}

/** Shares files with `setfacl`, or `chgrp` + `chmod`. */
export const denoFileSharing: FileSharing = {
  async listFiles(dir) {
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && !e.name.startsWith(".")) names.push(e.name);
    }
    return names.sort();
  },
  async setAcl(path, acl) {
    let r;
    try {
      r = await run("setfacl", ["--set", acl, "--", path]);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
    if (r.ok) return true;
    if (/Operation not supported/i.test(r.stderr)) return false;
    throw new Error(`setfacl: ${r.stderr}`);
  },
  async setGroup(path, group, mode) {
    const r = await run("chgrp", ["--", group, path]);
    if (!r.ok) throw new Error(`chgrp: ${r.stderr}`);
    await Deno.chmod(path, mode);
  },
};
