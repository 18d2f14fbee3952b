/**
 * `tctl edit` through the tctl entry point against a real auth service, with
 * EDITOR set to scripts that change, break or race the file.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../_assert.ts";
import { type RunResult, startAuth, tctl } from "./_harness.ts";

function ok(r: RunResult): string {
  assertEquals(r.code, 0, `tctl failed: ${r.stderr}`);
  return r.stdout;
}

Deno.test("tctl edit: CAS save, no-op, invalid text kept, concurrent change refused", async (t) => {
  const auth = await startAuth();
  const conn = ["--auth-server", auth.address, "-i", auth.identity];
  const tmp = `${auth.workDir}/tmp`;
  await Deno.mkdir(tmp);
  const script = async (name: string, body: string) => {
    const path = `${auth.workDir}/${name}.sh`;
    await Deno.writeTextFile(path, `#!/bin/sh\nset -e\n${body}\n`, { mode: 0o755 });
    return path;
  };
  const edit = (ref: string, editor: string) =>
    tctl(["edit", ref, ...conn], {
      cwd: auth.workDir,
      env: { EDITOR: editor, VISUAL: "", TMPDIR: tmp },
    });
  const token = async () =>
    JSON.parse(ok(await tctl(["get", "token/web", "--format", "json", ...conn])))[0];
  const leftovers = async () => {
    const out: string[] = [];
    for await (const d of Deno.readDir(tmp)) out.push(d.name);
    return out;
  };
  try {
    ok(await tctl(["bots", "add", "web", ...conn]));
    const before = await token();

    await t.step(
      "a change is saved with the revision read; status kept; temp file removed",
      async () => {
        const r = await edit(
          "token/web",
          await script("raise", `sed -i 's/limit: 1$/limit: 5/' "$1"`),
        );
        assertEquals(ok(r), 'token "web" has been updated\n');
        const after = await token();
        assertEquals(after.spec.bound_keypair.recovery.limit, 5);
        assertEquals(
          after.status.bound_keypair.registration_secret,
          before.status.bound_keypair.registration_secret,
        );
        assert(after.metadata.revision !== before.metadata.revision);
        assertEquals(await leftovers(), []);
      },
    );

    await t.step("unchanged file (or only comments): no write", async () => {
      const rev = (await token()).metadata.revision;
      assertStringIncludes(ok(await edit("token/web", "true")), "unchanged; nothing saved");
      const comment = await script("comment", `echo '# just looking' >> "$1"`);
      assertStringIncludes(ok(await edit("token/web", comment)), "unchanged; nothing saved");
      assertEquals((await token()).metadata.revision, rev);
      assertEquals(await leftovers(), []);
    });

    await t.step("invalid YAML or schema: the line, the text kept in a printed path", async () => {
      const rev = (await token()).metadata.revision;
      for (
        const [name, body, want] of [
          ["syntax", `sed -i 's/limit: 5$/limit: [5/' "$1"`, /invalid YAML at line \d+/],
          ["schema", `sed -i 's/limit: 5$/limit: "five"/' "$1"`, /recovery\.limit: .*\(line \d+\)/],
        ] as const
      ) {
        const r = await edit("token/web", await script(name, body));
        assertEquals(r.code, 1, r.stderr);
        const lines = r.stderr.trim().split("\n");
        assertEquals(lines.length, 1, r.stderr);
        assertMatch(lines[0], want);
        const path = lines[0].match(/your text is kept in (\S+)$/)?.[1];
        assert(path, lines[0]);
        assertStringIncludes(await Deno.readTextFile(path), name === "syntax" ? "[5" : '"five"');
        assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
      }
      assertEquals((await token()).metadata.revision, rev);
    });

    await t.step("a change made while the editor was open is refused, nothing lost", async () => {
      const wrapper = `${auth.binDir}/tctl`;
      const racer = await script(
        "race",
        `${wrapper} bound-keypair rotate web --auth-server ${auth.address} -i ${auth.identity} >/dev/null\n` +
          `sed -i 's/limit: 5$/limit: 9/' "$1"`,
      );
      const r = await edit("token/web", racer);
      assertEquals(r.code, 1, r.stderr);
      assertStringIncludes(r.stderr, 'token "web" was changed by someone else while you edited it');
      const path = r.stderr.trim().match(/your text is kept in (\S+)$/)?.[1];
      assert(path, r.stderr);
      assertStringIncludes(await Deno.readTextFile(path), "limit: 9");
      const after = await token();
      assertEquals(after.spec.bound_keypair.recovery.limit, 5);
      assert(after.spec.bound_keypair.rotate_after, "the concurrent rotation is kept");
    });

    await t.step("usage: KIND/NAME, editable kinds, editor failure", async () => {
      const r = await edit("token", "true");
      assertEquals(r.code, 2, r.stderr);
      assertStringIncludes(r.stderr, "KIND/NAME");
      const failing = await edit("token/web", "false");
      assertEquals(failing.code, 1);
      assertStringIncludes(failing.stderr, "exited with status 1; nothing was saved");
      const missing = await edit("bot/nobody", "true");
      assertEquals(missing.code, 1);
      assertStringIncludes(missing.stderr, "nobody");
    });
  } finally {
    await auth.stop();
  }
});
