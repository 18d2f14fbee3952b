/**
 * The real tctl against the real admin API: `tctl bots add` and `tctl create`
 * refuse a bot or role name that cannot fit a certificate subject (X.509
 * bounds CN and O at 64 characters) with one line naming the field and the
 * limit, and create nothing.
 *
 * @module
 */
import { assertEquals, assertStringIncludes } from "../_assert.ts";
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
