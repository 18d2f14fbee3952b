/**
 * Under a narrowed `--allow-run`, tbot finds a hook's or sharing's program
 * where Deno would start it: the first place on the PATH that this user may
 * execute, as `access(2)` decides (the owner's bit for the owner, the
 * group's for a member, the others' for anyone else), not any execute bit.
 * A real lookup on real files, run as another user (`setpriv`: root may
 * execute anything with an execute bit, so only a user shows the
 * difference), checked against the program Deno itself starts.
 */
import { assertEquals } from "../_assert.ts";
import { bundleForUser } from "../_bundle.ts";
import { cannotActAsOthers, ignoreUnless } from "../_tools.ts";

const NOBODY = 65534;
const GROUP = 4242;

Deno.test({
  name: "a narrowed --allow-run: the program is the first place this user may execute, as Deno's",
  ignore: ignoreUnless("program lookup test", cannotActAsOthers()),
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "tbot-lookup-" });
  try {
    const { bundle, cache } = await bundleForUser(
      new URL("./_program_lookup.ts", import.meta.url),
      dir,
      NOBODY,
    );
    /** `prog` in `dir/name`, owned by `uid`:`gid` with `mode`; it prints its place. */
    const prog = async (name: string, uid: number, gid: number, mode: number) => {
      await Deno.mkdir(`${dir}/${name}`, { mode: 0o755 });
      const path = `${dir}/${name}/prog`;
      await Deno.writeTextFile(path, `#!/bin/sh\necho ${name}\n`);
      await Deno.chown(path, uid, gid);
      await Deno.chmod(path, mode);
      return `${dir}/${name}`;
    };
    // Owned by the user, who may not execute it; group and others may.
    const ownerNo = await prog("owner-no", NOBODY, NOBODY, 0o611);
    // The user's supplementary group may not; others may.
    const groupNo = await prog("group-no", 0, GROUP, 0o701);
    // The user's supplementary group may: others may not.
    const groupYes = await prog("group-yes", 0, GROUP, 0o750);
    const everyone = await prog("everyone", 0, 0, 0o755);
    /** The child as the user (in group GROUP) with `allowRun`. */
    const asUser = async (allowRun: string, how: string, path: string) => {
      const out = await new Deno.Command("/usr/bin/setpriv", {
        args: [
          `--reuid=${NOBODY}`,
          `--regid=${NOBODY}`,
          `--groups=${GROUP}`,
          Deno.execPath(),
          "run",
          "--no-config",
          "--no-prompt",
          "--allow-read",
          "--allow-sys=uid,gid",
          allowRun,
          bundle,
          how,
          "prog",
          path,
        ],
        cwd: dir,
        clearEnv: true,
        env: { DENO_DIR: cache, HOME: dir, NO_COLOR: "1" },
        stdin: "null",
      }).output();
      const text = new TextDecoder().decode(out.stdout).trim();
      assertEquals(out.code, 0, `${text}\n${new TextDecoder().decode(out.stderr)}`);
      return JSON.parse(text);
    };
    const cases: [string[], string][] = [
      [[ownerNo, everyone], "everyone"],
      [[groupNo, everyone], "everyone"],
      [[groupYes, everyone], "group-yes"],
    ];
    for (const [places, expected] of cases) {
      const path = places.join(":");
      // Deno's own search, with the whole --allow-run.
      assertEquals(await asUser("--allow-run", "deno", path), { ran: expected }, path);
      // tbot's, narrowed to the place Deno starts: found there, and allowed.
      const place = `${dir}/${expected}/prog`;
      assertEquals(await asUser(`--allow-run=${place}`, "lookup", path), { command: place }, path);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
