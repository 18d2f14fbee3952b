/**
 * The real tctl against the real admin API: `tctl bots add` and `tctl create`
 * refuse a bot or role name that cannot fit a certificate subject (X.509
 * bounds CN and O at 64 characters) with one line naming the field and the
 * limit, and create nothing. A role stored with more logins than one SSH
 * certificate carries is written back only unchanged (docs/operations.md).
 *
 * @module
 */
import { assertEquals, assertStringIncludes } from "../_assert.ts";
import { putResource as putStored } from "../server/_join_fixture.ts";
import { startInProcessAuth, tctl } from "./_harness.ts";

Deno.test("tctl bots add and tctl create refuse names past X.509's bound, in one line", async () => {
  const auth = await startInProcessAuth();
  const conn = ["--auth-server", auth.url, "-i", auth.identity];
  const dir = await Deno.makeTempDir();
  const names = async (kind: string) => {
    const r = await tctl(["get", kind, "--format", "json", ...conn]);
    assertEquals(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { metadata: { name: string } }[]).map((x) => x.metadata.name);
  };
  try {
    const add = await tctl(["bots", "add", "b".repeat(61), ...conn]);
    assertEquals(add.code, 1, add.stderr);
    assertEquals(
      add.stderr,
      "tctl: error [BAD_PARAMETER]: metadata.name: 61 characters: a new bot's name is at most 60 " +
        `characters (its certificates' common name is "bot-" and the name, and X.509 bounds a ` +
        "common name at 64)\n",
    );
    assertEquals(await names("bots"), [], "no bot");
    assertEquals(await names("tokens"), [], "no token either");

    await Deno.writeTextFile(
      `${dir}/role.yaml`,
      `kind: role\nversion: v7\nmetadata:\n  name: ${"r".repeat(65)}\nspec: {}\n`,
    );
    const create = await tctl(["create", `${dir}/role.yaml`, ...conn]);
    assertEquals(create.code, 1, create.stderr);
    assertEquals(create.stderr.split("\n").filter((l) => l).length, 1, create.stderr);
    assertStringIncludes(
      create.stderr,
      "metadata.name: 65 characters: a role a bot carries is at most 64 characters",
    );
    assertEquals(await names("roles"), []);

    const ok = await tctl(["bots", "add", "b".repeat(60), ...conn]);
    assertEquals(ok.code, 0, ok.stderr);
    assertEquals(await names("bots"), ["b".repeat(60)]);
  } finally {
    await auth.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a role stored with more than 256 logins is written back only unchanged, or cut to 256", async () => {
  const auth = await startInProcessAuth();
  const conn = ["--auth-server", auth.url, "-i", auth.identity];
  const dir = await Deno.makeTempDir();
  const logins = Array.from({ length: 300 }, (_, i) => `o${i}`);
  // Stored before the bound: written straight to the backend, as an older version would have.
  await putStored(auth.ctx, "role", {
    kind: "role",
    version: "v7",
    metadata: { name: "old" },
    spec: { allow: { logins } },
  });
  const write = async (change: (l: string[]) => string[]) => {
    const got = await tctl(["get", "role/old", "--format", "json", ...conn]);
    assertEquals(got.code, 0, got.stderr);
    const [role] = JSON.parse(got.stdout);
    role.spec.allow.logins = change(role.spec.allow.logins);
    await Deno.writeTextFile(`${dir}/role.json`, JSON.stringify([role]));
    return await tctl(["create", "-f", `${dir}/role.json`, ...conn]);
  };
  const refused = (r: { code: number; stderr: string }, count: number) => {
    assertEquals(r.code, 1, r.stderr);
    assertStringIncludes(
      r.stderr,
      `spec.allow.logins: ${count} distinct logins: at most 256 distinct logins`,
    );
  };
  try {
    assertEquals((await write((l) => l)).code, 0, "unchanged: written back");
    refused(await write((l) => l.slice(0, 299)), 299);
    refused(await write((l) => [...l].reverse()), 300);
    const cut = await write((l) => l.slice(0, 256));
    assertEquals(cut.code, 0, cut.stderr);
  } finally {
    await auth.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
