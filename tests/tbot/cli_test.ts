import { DirectoryStorage } from "../../runtime-adapters/deno/dir_storage.ts";
import { TBOT_VERSION } from "../../src/agent/version.ts";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { clusterWithBot } from "../agent/_cluster.ts";
import { dirSnapshot, freePort, runTbot, tbotYaml } from "./_harness.ts";

async function tempDir(): Promise<string & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "tbot-cli-" });
  return Object.assign(dir, {
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  }) as string & AsyncDisposable;
}

function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.includes(" ERROR "));
}

Deno.test("cli: version, help, and unknown flags", async () => {
  const v = await runTbot(["version"]);
  assertEquals(v.code, 0);
  assertStringIncludes(v.stdout, `tbot v${TBOT_VERSION}`);
  const h = await runTbot(["--help"]);
  assertEquals(h.code, 0);
  assertStringIncludes(h.stdout, "keypair create");
  const bad = await runTbot(["start", "--frobnicate"]);
  assertEquals(bad.code, 2);
  assertStringIncludes(bad.stderr, "unknown flag --frobnicate");
  const wrongPlace = await runTbot(["version", "--oneshot"]);
  assertEquals(wrongPlace.code, 2);
  assertStringIncludes(wrongPlace.stderr, 'flag --oneshot does not apply to "tbot version"');
  // A bad flag value is a usage error too, on every command: exit 2, one `tbot: error [BAD_PARAMETER]: ` line.
  for (const args of [["start"], ["start", "-c", "/nonexistent.yaml"], ["version"]]) {
    const fmt = await runTbot([...args, "--log-format", "xml"]);
    assertEquals(fmt.code, 2, fmt.stderr);
    assertEquals(
      fmt.stderr,
      'tbot: error [BAD_PARAMETER]: --log-format: must be "text" or "json", not "xml"\n',
    );
  }
});

Deno.test("cli: bad config files fail with the file, line and field", async () => {
  await using dir = await tempDir();
  const base = tbotYaml({ address: "127.0.0.1:3025", storage: `${dir}/bot`, secret: "s" });
  const cases: [string, string][] = [
    [base.replace("token: example", "tokn: example"), `:5: onboarding: unknown field "tokn"`],
    [base + "oneshot: 3\n", ":12: oneshot: Invalid input: expected boolean"],
    [base.replace("version: v2", "version: v3"), ":1: version: unsupported config version"],
    [base.replace("  type: directory\n", "  type: s3\n"), ":9: storage.type"],
    [base + "  bad: [indent\n", "YAML syntax error"],
    [base + "renewal_interval: often\n", ':12: renewal_interval: invalid duration "often"'],
  ];
  for (const [text, expected] of cases) {
    await Deno.writeTextFile(`${dir}/tbot.yaml`, text);
    const r = await runTbot(["start", "-c", `${dir}/tbot.yaml`, "--oneshot"]);
    assertEquals(r.code, 1, text);
    const errors = errorLines(r.stderr);
    assertEquals(errors.length, 1, r.stderr);
    assertStringIncludes(errors[0], `${dir}/tbot.yaml`);
    assertStringIncludes(errors[0], expected);
    assertStringIncludes(errors[0], " code=CONFIG_INVALID");
  }
  const missing = await runTbot(["start", "-c", `${dir}/nope.yaml`]);
  assertEquals(missing.code, 1);
  assertStringIncludes(missing.stderr, `cannot read ${dir}/nope.yaml: no such file`);
  const viaEnv = await runTbot(["start", "--oneshot"], { TBOT_CONFIG_PATH: `${dir}/nope.yaml` });
  assertStringIncludes(viaEnv.stderr, `cannot read ${dir}/nope.yaml`);
});

/**
 * A directory nobody may create entries in, root included: immutable
 * (chattr +i) when running as root, mode 0500 otherwise. Null if this file
 * system cannot do either.
 */
function lockedDir(dir: string): { path: string; undo(): void } | null {
  const path = `${dir}/locked`;
  Deno.mkdirSync(path);
  if (Deno.uid() !== 0) {
    Deno.chmodSync(path, 0o500);
    return { path, undo: () => Deno.chmodSync(path, 0o700) };
  }
  try {
    const r = new Deno.Command("chattr", { args: ["+i", path], stderr: "null" }).outputSync();
    if (!r.success) return null;
  } catch {
    return null;
  }
  return { path, undo: () => void new Deno.Command("chattr", { args: ["-i", path] }).outputSync() };
}

/** Why the read-only-directory test cannot run here, or null if it can. */
function lockedDirMissing(): string | null {
  const probe = Deno.makeTempDirSync({ prefix: "tbot-lock-probe-" });
  try {
    const locked = lockedDir(probe);
    if (!locked) return "cannot make a directory read-only here (running as root without chattr)";
    locked.undo();
    return null;
  } finally {
    Deno.removeSync(probe, { recursive: true });
  }
}
const lockedDirProblem = lockedDirMissing();
if (lockedDirProblem) console.warn(`ignored: storage-directory test: ${lockedDirProblem}`);

Deno.test({
  name: "cli: a storage directory that cannot be created is a clear error",
  ignore: lockedDirProblem !== null,
  fn: async () => {
    await using dir = await tempDir();
    const locked = lockedDir(dir)!;
    try {
      const storage = `${locked.path}/bot`;
      await Deno.writeTextFile(
        `${dir}/tbot.yaml`,
        tbotYaml({ address: "127.0.0.1:3025", storage, secret: "s" }),
      );
      const r = await runTbot(["start", "-c", `${dir}/tbot.yaml`, "--oneshot"]);
      assertEquals(r.code, 1);
      const [line] = errorLines(r.stderr);
      assertStringIncludes(line, `cannot create the directory ${storage}: permission denied`);
      assertStringIncludes(line, `mkdir -m 0700 ${storage}`);
    } finally {
      locked.undo();
    }
  },
});

Deno.test("cli: a second tbot on the same storage fails with a clear message", async () => {
  await using dir = await tempDir();
  const holder = new DirectoryStorage(`${dir}/bot`);
  await holder.init();
  const release = await holder.tryLock();
  try {
    await Deno.writeTextFile(
      `${dir}/tbot.yaml`,
      tbotYaml({ address: "127.0.0.1:3025", storage: `${dir}/bot`, secret: "s" }),
    );
    const r = await runTbot(["start", "-c", `${dir}/tbot.yaml`, "--oneshot"]);
    assertEquals(r.code, 1);
    assertStringIncludes(r.stderr, "another tbot process is using the storage");
    assertStringIncludes(r.stderr, "is tbot already running?");
  } finally {
    await release();
  }
});

Deno.test("cli: a server that answers garbage is a clear error and no key is lost", async () => {
  await using dir = await tempDir();
  // Join once for real so there are keys to lose.
  const { cluster, secret } = await clusterWithBot(5);
  const served = await cluster.serve();
  await Deno.writeTextFile(
    `${dir}/tbot.yaml`,
    tbotYaml({ address: served.address, storage: `${dir}/bot`, secret, pins: [cluster.pin] }),
  );
  assertEquals((await runTbot(["start", "-c", `${dir}/tbot.yaml`, "--oneshot"])).code, 0);
  await served.stop();
  const before = await dirSnapshot(`${dir}/bot`);

  const answers = [
    () => new Response("<html>hello</html>", { status: 200 }),
    () => new Response('{"session":"x","step":{"type":"dance"}}', { status: 200 }),
    () => new Response("oops", { status: 500 }),
  ];
  for (const answer of answers) {
    const garbage = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, answer);
    await Deno.writeTextFile(
      `${dir}/garbage.yaml`,
      tbotYaml({
        address: `http://127.0.0.1:${garbage.addr.port}`,
        storage: `${dir}/bot`,
        extra: "insecure: true",
      }),
    );
    const r = await runTbot(["start", "-c", `${dir}/garbage.yaml`, "--oneshot"]);
    await garbage.shutdown();
    assertEquals(r.code, 1, r.stderr);
    const errors = errorLines(r.stderr);
    assertEquals(errors.length, 1, r.stderr);
    assert(/unexpected join response|without a Keybound error body/.test(errors[0]), errors[0]);
    assertEquals(await dirSnapshot(`${dir}/bot`), before, "no key lost");
  }
});

Deno.test("cli: tbot wait gives up after --timeout when nothing is ready", async () => {
  const port = freePort();
  const r = await runTbot(["wait", "--diag-addr", `127.0.0.1:${port}`, "--timeout", "1s"]);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, `tbot at 127.0.0.1:${port} was not ready within 1s`);
});
