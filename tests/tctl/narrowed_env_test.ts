/**
 * tctl run on a terminal under a narrowed `--allow-env` (or without
 * `--allow-write` / `--allow-run`) never waits on one of
 * Deno's permission prompts: a variable it would consult but may not read is
 * refused by name (CONFIG_INVALID, naming the flag), never taken for unset,
 * and `tctl edit` names the flag it lacks before writing anything. A real
 * tctl on a pseudo-terminal (`script`), a real auth app on loopback.
 */
import { assert, assertEquals, assertMatch } from "../_assert.ts";
import { ignoreUnless } from "../_tools.ts";
import { noScript, onTerminal } from "../cli/_terminal.ts";
import { startInProcessAuth, TCTL } from "./_harness.ts";

const CONNECTION = "TELEPORT_AUTH_SERVER,TELEPORT_IDENTITY_FILE,TELEPORT_CA_PATH";

Deno.test({
  name:
    "narrowed --allow-env on a terminal: tctl asks nothing and names the variable it may not read",
  ignore: ignoreUnless("narrowed permissions test", noScript()),
}, async (t) => {
  const auth = await startInProcessAuth();
  const dir = await Deno.makeTempDir({ prefix: "tctl-narrowed-" });
  /** tctl `args` on a terminal, with `vars` set and `flags` its Deno permissions. */
  const run = async (flags: string[], args: string[], vars: Record<string, string> = {}) => {
    const r = await onTerminal([
      "env",
      `TELEPORT_AUTH_SERVER=${auth.url}`,
      `TELEPORT_IDENTITY_FILE=${auth.identity}`,
      ...Object.entries(vars).map(([k, v]) => `${k}=${v}`),
      Deno.execPath(),
      "run",
      "--allow-net",
      "--allow-read",
      ...flags,
      TCTL,
      ...args,
    ], dir);
    assert(!r.prompted, `Deno prompted:\n${r.shown}`);
    return r;
  };
  const refused = (shown: string, variable: string, names: string) =>
    new RegExp(
      `tctl: error \\[CONFIG_INVALID\\]: tctl may not read ${variable}: its --allow-env does ` +
        `not name it, and it decides .*: allow ${names} \\(--allow-env=${names},…; they may ` +
        `stay unset\\)`,
    ).test(shown);
  try {
    const role = `${dir}/role.yaml`;
    await Deno.writeTextFile(
      role,
      "kind: role\nversion: v7\nmetadata:\n  name: narrow\nspec: {}\n",
    );

    await t.step("a connection variable outside --allow-env is refused by name", async () => {
      for (const allowed of ["HOME", "TELEPORT_AUTH_SERVER,TELEPORT_IDENTITY_FILE"]) {
        const r = await run([`--allow-env=${allowed}`], ["status"]);
        assertEquals(r.code, 1, r.shown);
        const variable = allowed === "HOME" ? "TELEPORT_AUTH_SERVER" : "TELEPORT_CA_PATH";
        assert(refused(r.shown, variable, CONNECTION), r.shown);
      }
      // The flags instead: TELEPORT_CA_PATH alone is consulted.
      const flagged = await run(
        ["--allow-env=TELEPORT_CA_PATH"],
        ["status", "--auth-server", auth.url, "-i", auth.identity],
      );
      assertEquals(flagged.code, 0, flagged.shown);
    });

    await t.step("allowed, tctl works; the YAML parser's own variable never prompts", async () => {
      const r = await run([`--allow-env=${CONNECTION}`], ["create", "-f", role]);
      assertEquals(r.code, 0, r.shown);
      assertMatch(r.shown, /role "narrow" has been created/);
    });

    await t.step("tctl edit: the editor's variables and its flags are named", async () => {
      const editor = `${dir}/editor.sh`;
      await Deno.writeTextFile(
        editor,
        `#!/bin/sh\nsed -i 's/spec: {}/spec: {allow: {logins: [x]}}/' "$1"\n`,
        {
          mode: 0o755,
        },
      );
      // Without --allow-write and --allow-run (as the tctl task ran before session 11).
      const noWrite = await run([`--allow-env=${CONNECTION},VISUAL,EDITOR`], [
        "edit",
        "role/narrow",
      ], {
        EDITOR: editor,
      });
      assertEquals(noWrite.code, 1, noWrite.shown);
      assertMatch(
        noWrite.shown,
        /tctl: error \[CONFIG_INVALID\]: tctl edit: tctl may not write \/tmp: its --allow-write does not name it; nothing was changed/,
      );
      const noRun = await run(
        [`--allow-env=${CONNECTION},VISUAL,EDITOR`, "--allow-write"],
        ["edit", "role/narrow"],
        { EDITOR: editor },
      );
      assertEquals(noRun.code, 1, noRun.shown);
      assertMatch(noRun.shown, /tctl may not start \/bin\/sh: its --allow-run does not name it/);
      // VISUAL not allowed: refused, not taken for unset (which would open EDITOR or vi).
      const full = ["--allow-write", "--allow-run=/bin/sh"];
      const hidden = await run([`--allow-env=${CONNECTION},EDITOR`, ...full], [
        "edit",
        "role/narrow",
      ], {
        EDITOR: editor,
      });
      assertEquals(hidden.code, 1, hidden.shown);
      assert(refused(hidden.shown, "VISUAL", "VISUAL,EDITOR"), hidden.shown);
      const edited = await run([`--allow-env=${CONNECTION},VISUAL,EDITOR`, ...full], [
        "edit",
        "role/narrow",
      ], {
        EDITOR: editor,
      });
      assertEquals(edited.code, 0, edited.shown);
      assertMatch(edited.shown, /role "narrow" has been updated/);
      // The tctl task's own flags (and the compiled tctl's: tests/conformance/compile_test.ts).
      const task = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)))
        .tasks.tctl as string;
      const taskFlags = task.split(/\s+/).filter((w) => w.startsWith("--"));
      const asTask = await run(taskFlags, ["edit", "role/narrow"], { EDITOR: editor });
      assertEquals(asTask.code, 0, asTask.shown);
      assertMatch(asTask.shown, /role "narrow" (has been updated|unchanged)/);
    });
  } finally {
    await auth.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "narrowed --allow-read on a terminal: tctl asks nothing and names the file it may not read",
  ignore: ignoreUnless("narrowed permissions test", noScript()),
}, async () => {
  const auth = await startInProcessAuth();
  const dir = await Deno.makeTempDir({ prefix: "tctl-narrowed-read-" });
  const tmp = `${dir}/tmp`;
  const role = `${dir}/role.yaml`;
  const editor = `${dir}/editor.sh`;
  /** tctl `args` on a terminal, allowed to read `reads` only. */
  const run = async (reads: string[], args: string[]) => {
    const r = await onTerminal([
      "env",
      `EDITOR=${editor}`,
      `TMPDIR=${tmp}`,
      Deno.execPath(),
      "run",
      "--allow-net",
      `--allow-read=${reads.join(",")}`,
      `--allow-env=${CONNECTION},VISUAL,EDITOR,TMPDIR`,
      "--allow-write",
      "--allow-run=/bin/sh",
      TCTL,
      "--auth-server",
      auth.url,
      "-i",
      auth.identity,
      ...args,
    ], dir);
    assert(!r.prompted, `Deno prompted:\n${r.shown}`);
    return r;
  };
  try {
    await Deno.mkdir(tmp);
    await Deno.writeTextFile(
      role,
      "kind: role\nversion: v7\nmetadata:\n  name: narrow\nspec: {}\n",
    );
    await Deno.writeTextFile(
      editor,
      `#!/bin/sh\nsed -i 's/spec: {}/spec: {allow: {logins: [x]}}/' "$1"\n`,
      { mode: 0o755 },
    );
    const identity = await run([role], ["status"]);
    assertEquals(identity.code, 1, identity.shown);
    assertMatch(
      identity.shown,
      new RegExp(
        `cannot read identity file ${auth.identity}: tctl may not read ${auth.identity}: its --allow-read does not name it`,
      ),
    );
    const create = await run([auth.identity], ["create", role]);
    assertEquals(create.code, 2, create.shown);
    assertMatch(
      create.shown,
      new RegExp(
        `cannot read ${role}: tctl may not read ${role}: its --allow-read does not name it`,
      ),
    );
    assertEquals((await run([auth.identity, role], ["create", role])).code, 0);
    // The temp directory unreadable: refused before the resource is written there.
    const edit = await run([auth.identity], ["edit", "role/narrow"]);
    assertEquals(edit.code, 1, edit.shown);
    assertMatch(
      edit.shown,
      new RegExp(
        `tctl edit: tctl may not read ${tmp}: its --allow-read does not name it; nothing was changed`,
      ),
    );
    assertEquals([...Deno.readDirSync(tmp)], [], "nothing was left in the temp directory");
    const edited = await run([auth.identity, tmp], ["edit", "role/narrow"]);
    assertEquals(edited.code, 0, edited.shown);
    assertMatch(edited.shown, /role "narrow" has been updated/);
  } finally {
    await auth.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
