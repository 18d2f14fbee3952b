import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { runTbot } from "../tbot/_harness.ts";
import { tctl } from "../tctl/_harness.ts";

/** The lines of `stderr` that are not empty. */
function lines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l !== "");
}

Deno.test("messages: an OS error names the path and what was being done", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cli-messages-" });
  try {
    await Deno.writeTextFile(
      `${dir}/tbot.yaml`,
      "version: v2\nproxy_server: 127.0.0.1:3025\nonboarding:\n  join_method: bound_keypair\n" +
        "  token: t\n" +
        "storage:\n  type: memory\n",
    );
    const r = await runTbot([
      "install",
      "systemd",
      "-c",
      `${dir}/tbot.yaml`,
      "--write",
      "--systemd-directory",
      `${dir}/missing`,
    ]);
    assertEquals(r.code, 1, r.stderr);
    assertEquals(lines(r.stderr).length, 1, r.stderr);
    assertStringIncludes(
      r.stderr,
      `cannot write ${dir}/missing/tbot.service: no such file or directory`,
    );
    assert(!r.stderr.includes("os error"), r.stderr);

    const c = await tctl(["create", `${dir}/none.yaml`, "--auth-server", "127.0.0.1:1"]);
    assertEquals(c.code, 2, c.stderr);
    assertEquals(c.stderr, `ERROR: cannot read ${dir}/none.yaml: no such file or directory\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("messages: a flag's error names the flag once", async () => {
  const r = await runTbot(["start", "--storage", "file:///", "--token", "t"]);
  assertEquals(lines(r.stderr).filter((l) => l.includes(" ERROR ")).length, 1, r.stderr);
  assertStringIncludes(r.stderr, 'ERROR --storage: "file:///" names no directory');
  assert(!r.stderr.includes("--storage: --storage"), r.stderr);
});
