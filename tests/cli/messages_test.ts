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

    // Each file the agent is given: named once with what was being done, exit 1.
    const start = ["start", "-c", `${dir}/tbot.yaml`, "--oneshot"];
    const files: [string[], string][] = [
      [["--pid-file", `${dir}/missing/pid`], `--pid-file: cannot write ${dir}/missing/pid: `],
      [["--registration-secret-path", `${dir}/none`], `cannot read ${dir}/none: `],
      [["--static-key-path", `${dir}/none.pem`], `cannot read ${dir}/none.pem: `],
    ];
    for (const [extra, expected] of files) {
      const f = await runTbot([...start, ...extra]);
      assertEquals(f.code, 1, f.stderr);
      const errors = lines(f.stderr).filter((l) => l.includes(" ERROR "));
      assertEquals(errors.length, 1, f.stderr);
      assertStringIncludes(errors[0], `${expected}no such file or directory`);
      assertEquals(errors[0].split("cannot").length, 2, `said once: ${errors[0]}`);
    }
    const o = await runTbot([
      "configure",
      "identity",
      "--destination",
      "d",
      "--proxy-server",
      "h:1",
      "--token",
      "t",
      "-o",
      `${dir}/missing/x.yaml`,
    ]);
    assertEquals(o.code, 1, o.stderr);
    assertStringIncludes(o.stderr, `cannot write ${dir}/missing/x.yaml: no such file or directory`);

    const c = await tctl(["create", `${dir}/none.yaml`, "--auth-server", "127.0.0.1:1"]);
    assertEquals(c.code, 2, c.stderr);
    assertEquals(
      c.stderr,
      `tctl: error [BAD_PARAMETER]: cannot read ${dir}/none.yaml: no such file or directory\n`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("messages: a usage error escapes the value it quotes (one line, no raw control characters)", async () => {
  // A value from argv or the environment must not forge a second line or drive the terminal.
  const r = await runTbot(["start", "--token", "t", "--ca-pin", "x\u001b[2J\ntbot: forged"]);
  assertEquals(r.code, 2, r.stderr);
  assertEquals(lines(r.stderr).length, 1, r.stderr);
  assert(r.stderr.startsWith("tbot: error [BAD_PARAMETER]: --ca-pin: "), r.stderr);
  assert(!r.stderr.includes("\u001b"), JSON.stringify(r.stderr));
  assertStringIncludes(r.stderr, "\\u001b[2J\\ntbot: forged");
});

Deno.test("messages: a flag's error names the flag once, exit 2, with or without a file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cli-messages-" });
  try {
    await Deno.writeTextFile(
      `${dir}/tbot.yaml`,
      "version: v2\nproxy_server: 127.0.0.1:9\nonboarding:\n  join_method: bound_keypair\n" +
        "  token: t\nstorage:\n  type: memory\n",
    );
    const cases: [string[], string][] = [
      [
        ["start", "--storage", "file:///", "--token", "t"],
        '--storage: "file:///" names no directory',
      ],
      [["start", "-c", `${dir}/tbot.yaml`, "--storage", "file:///"], "--storage: "],
      [["start", "-c", `${dir}/tbot.yaml`, "--certificate-ttl", "soon"], "--certificate-ttl: "],
      [["start", "-c", `${dir}/tbot.yaml`, "--proxy-server", "ftp://x:1"], "--proxy-server: "],
      [["start", "-c", `${dir}/tbot.yaml`, "--ca-pin", "x"], "--ca-pin: "],
      [["start", "-c", `${dir}/tbot.yaml`, "--diag-addr", "x"], "--diag-addr: "],
      [["keypair", "create", "--storage", `${dir}/k`, "--format", "xml"], "--format: "],
      [["wait", "--diag-addr", "127.0.0.1:1", "--timeout", "x"], "--timeout: "],
      [["install", "systemd", "-c", `${dir}/tbot.yaml`, "--name", "a b"], "--name: "],
    ];
    for (const [args, expected] of cases) {
      const r = await runTbot(args);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertEquals(lines(r.stderr).length, 1, r.stderr);
      assert(
        r.stderr.startsWith(`tbot: error [BAD_PARAMETER]: ${expected}`),
        `${args.join(" ")}: ${r.stderr}`,
      );
      assert(!/(--[a-z-]+): \1/.test(r.stderr), r.stderr);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
