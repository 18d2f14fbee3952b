import { TBOT_DENO_FLAGS } from "../../runtime-adapters/deno/tbot_main.ts";
import { renderSystemdUnit, systemdQuote } from "../../src/cli/tbot/systemd_unit.ts";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { runTbot, tbotYaml } from "./_harness.ts";
import { ignoreWithout } from "../_tools.ts";

/** A test that runs systemd-analyze: ignored, saying why, outside CI without it. */
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test(name, { ignore: ignoreWithout("systemd unit verification", "systemd-analyze") }, fn);

/** `systemd-analyze verify` on a unit file; the unit's programs must exist. */
async function verify(path: string): Promise<{ ok: boolean; output: string }> {
  const r = await new Deno.Command("systemd-analyze", {
    args: ["verify", path],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { ok: r.success, output: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

async function setup() {
  const dir = await Deno.makeTempDir({ prefix: "tbot-systemd-" });
  await Deno.writeTextFile(
    `${dir}/tbot.yaml`,
    tbotYaml({ address: "127.0.0.1:3025", storage: `${dir}/bot`, secret: "s" }),
  );
  await Deno.mkdir(`${dir}/units`);
  return Object.assign(dir, { [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) });
}

test("install systemd: dry run by default; --write makes a unit systemd-analyze accepts", async () => {
  await using dir = await setup();
  const args = [
    "install",
    "systemd",
    "-c",
    `${dir}/tbot.yaml`,
    "--systemd-directory",
    `${dir}/units`,
  ];
  const dry = await runTbot(args);
  assertEquals(dry.code, 0, dry.stderr);
  assertStringIncludes(dry.stdout, "Dry-run mode is active. Use '--write' to enable writes.");
  await Deno.stat(`${dir}/units/tbot.service`).then(
    () => assert(false, "dry run writes nothing"),
    () => {},
  );

  const w = await runTbot([...args, "--write", "--anonymous-telemetry"]);
  assertEquals(w.code, 0, w.stderr);
  const unit = await Deno.readTextFile(`${dir}/units/tbot.service`);
  assertEquals((await Deno.stat(`${dir}/units/tbot.service`)).mode! & 0o777, 0o644);
  // ExecStart runs this Deno with absolute paths, so the unit is valid as written.
  assertStringIncludes(unit, `ExecStart=${Deno.execPath()} run `);
  assertStringIncludes(unit, ` start -c ${dir}/tbot.yaml --pid-file=/run/tbot/tbot.pid`);
  assertStringIncludes(unit, 'Environment="TELEPORT_ANONYMOUS_TELEMETRY=1"');
  assertStringIncludes(unit, "Environment=DENO_NO_UPDATE_CHECK=1\n");
  assertStringIncludes(unit, "User=teleport\nGroup=teleport\n");
  assertStringIncludes(unit, "ExecReload=/bin/kill -HUP $MAINPID");
  // Deno opens an unauthenticated debugger on 9229 on SIGUSR1; the unit cannot bind it at all.
  assertStringIncludes(unit, "SocketBindDeny=ipv4:tcp:9229\nSocketBindDeny=ipv6:tcp:9229\n");
  assert(!unit.includes("USR1"), "no unit line sends SIGUSR1");
  const v = await verify(`${dir}/units/tbot.service`);
  assert(v.ok, v.output);

  const same = await runTbot([...args, "--write", "--anonymous-telemetry"]);
  assertEquals(same.code, 0);
  assertStringIncludes(same.stderr, "already up to date");
  const differs = await runTbot([...args, "--write"]);
  assertEquals(differs.code, 1);
  assertStringIncludes(differs.stderr, "already exists with different content; use --force");
  const forced = await runTbot([...args, "--write", "--force"]);
  assertEquals(forced.code, 0, forced.stderr);
  assertStringIncludes(
    await Deno.readTextFile(`${dir}/units/tbot.service`),
    "TELEPORT_ANONYMOUS_TELEMETRY=0",
  );
});

test("install systemd: name, user, group and pid file flags; a missing -c is refused", async () => {
  await using dir = await setup();
  const r = await runTbot([
    "install",
    "systemd",
    "-c",
    `${dir}/tbot.yaml`,
    "--systemd-directory",
    `${dir}/units`,
    "--write",
    "--name",
    "mybot",
    "--user",
    "bots",
    "--group",
    "bots",
    "--pid-file",
    "/run/mybot/custom.pid",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const unit = await Deno.readTextFile(`${dir}/units/mybot.service`);
  assertStringIncludes(unit, "User=bots\nGroup=bots\n");
  assertStringIncludes(unit, "RuntimeDirectory=mybot\n");
  assertStringIncludes(unit, "PIDFile=/run/mybot/custom.pid\n");
  assert((await verify(`${dir}/units/mybot.service`)).ok);
  const noConfig = await runTbot(["install", "systemd"]);
  assertEquals(noConfig.code, 2);
  assertStringIncludes(noConfig.stderr, "-c/--config is required");
  const badConfig = `${dir}/bad.yaml`;
  await Deno.writeTextFile(badConfig, "version: v2\nnope: 1\n");
  const bad = await runTbot(["install", "systemd", "-c", badConfig]);
  // A config file's mistake is not a usage error: exit 1, as `tbot start -c` gives.
  assertEquals(bad.code, 1);
  assertStringIncludes(bad.stderr, `${badConfig}:2`);
});

test("systemd unit: words with spaces, quotes, % and $ survive systemd's parser", async () => {
  await using dir = await setup();
  const odd = `${dir}/my conf %h $HOME "x".yaml`;
  assertEquals(systemdQuote("/usr/bin/deno"), "/usr/bin/deno");
  assertEquals(systemdQuote(odd), `"${dir}/my conf %%h $$HOME \\"x\\".yaml"`);
  const unit = renderSystemdUnit({
    name: "tbot",
    user: "teleport",
    group: "teleport",
    command: [Deno.execPath(), "run", "/opt/tbot main.ts"],
    configPath: odd,
    pidFile: "/run/tbot/tbot.pid",
    anonymousTelemetry: false,
  });
  await Deno.writeTextFile(`${dir}/units/tbot.service`, unit);
  const v = await verify(`${dir}/units/tbot.service`);
  assert(v.ok, v.output);
});

Deno.test("the unit runs tbot with the same permission flags as `deno task tbot`", async () => {
  const denoJson = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  const task: string = denoJson.tasks.tbot;
  const flags = task.split(/\s+/).filter((w) => w.startsWith("--"));
  assertEquals(flags, TBOT_DENO_FLAGS);
});
