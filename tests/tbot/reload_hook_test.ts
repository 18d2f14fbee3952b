import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { clusterWithBot } from "../agent/_cluster.ts";
import { runTbot, spawnTbot, tbotYaml } from "./_harness.ts";
import { ignoreWithout } from "../_tools.ts";

/** A test that runs openssl: ignored, saying why, outside CI without it. */
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test(name, { ignore: ignoreWithout("reload hook test checked by openssl", "openssl") }, fn);

const SERVER = new URL("./_reloading_https_server.ts", import.meta.url).pathname;

async function setup() {
  const { cluster, secret } = await clusterWithBot();
  const dir = await Deno.makeTempDir({ prefix: "tbot-hook-" });
  return { cluster, secret, dir, config: `${dir}/tbot.yaml`, storage: `${dir}/bot` };
}

async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** The serial of a PEM certificate, or of the one a TLS server presents, by the real openssl. */
async function serial(source: { file: string } | { port: number }): Promise<string> {
  const script = "file" in source
    ? `openssl x509 -noout -serial -in "$1"`
    : `openssl s_client -connect 127.0.0.1:"$1" </dev/null 2>/dev/null | openssl x509 -noout -serial`;
  const out = await new Deno.Command("sh", {
    args: ["-c", script, "sh", "file" in source ? source.file : String(source.port)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert(text.startsWith("serial="), `openssl: ${new TextDecoder().decode(out.stderr)}`);
  return text;
}

async function readState(path: string): Promise<{ port: number; reloads: number } | null> {
  const text = await Deno.readTextFile(path).catch(() => "");
  const m = /^(\d+) (\d+)$/.exec(text);
  return m ? { port: Number(m[1]), reloads: Number(m[2]) } : null;
}

function identityOutput(path: string, name: string, onRenew: string[]): string[] {
  return [
    "  - type: identity",
    `    name: ${name}`,
    "    destination:",
    "      type: directory",
    `      path: ${path}`,
    "    on_renew:",
    ...onRenew.map((l) => `      ${l}`),
  ];
}

test("reload hook: an HTTPS server signalled after a renewal serves the new certificate; exec hooks get no secret", async () => {
  const s = await setup();
  const served = await s.cluster.serve();
  const out = `${s.dir}/out`;
  const pidFile = `${s.dir}/server.pid`;
  const state = `${s.dir}/server.state`;
  const yaml = tbotYaml({
    address: served.address,
    storage: s.storage,
    pins: [s.cluster.pin],
    secret: s.secret,
    extra: "diag_addr: 127.0.0.1:0",
  }).replace(
    "outputs: []",
    [
      "outputs:",
      ...identityOutput(out, "web", ["signal: HUP", `pid_file: ${pidFile}`]),
      ...identityOutput(`${s.dir}/env-out`, "envdump", [
        `exec: [sh, -c, 'env > "$KEYBOUND_OUTPUT_DIR/../hook.env"']`,
        "timeout: 20s",
      ]),
    ].join("\n"),
  );
  await Deno.writeTextFile(s.config, yaml);
  const d = spawnTbot(["start", "-c", s.config], { TBOT_CANARY: "canary-value-1f3e" });
  let server: Deno.ChildProcess | undefined;
  try {
    // The first write comes before the server exists: the hook fails, is reported, tbot goes on.
    await d.waitForLog(/reload hook failed; it runs again after the next renewal .*service=web/);
    await d.waitForLog(/reload hook ran .*service=envdump .*exit_code=0/);
    const env = await Deno.readTextFile(`${s.dir}/hook.env`);
    assert(!env.includes(s.secret), "the registration secret is not in a hook's environment");
    assert(!env.includes("canary-value-1f3e"), "tbot's environment is not passed on");
    assertStringIncludes(env, `KEYBOUND_OUTPUT_DIR=${out.replace("/out", "/env-out")}`);
    assertStringIncludes(env, "KEYBOUND_OUTPUT_NAME=envdump");

    server = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", SERVER, out, pidFile, state],
      stdin: "null",
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    await until(async () => (await readState(state))?.reloads === 0, "the HTTPS server");
    await until(() => Deno.stat(pidFile).then(() => true, () => false), "the server's PID file");
    const { port } = (await readState(state))!;
    const before = await serial({ port });
    assertEquals(before, await serial({ file: `${out}/tlscert` }));

    d.kill("SIGHUP");
    await until(async () => (await readState(state))?.reloads === 1, "the server's reload");
    await d.waitForLog(/reload hook ran .*service=web .*pid=\d+ signal=SIGHUP/);
    const after = await serial({ port });
    assert(after !== before, "a new certificate after the renewal");
    assertEquals(after, await serial({ file: `${out}/tlscert` }), "the one tbot just wrote");

    const addr = /diagnostics listening component=tbot addr=(\S+)/.exec(d.log())![1];
    const metrics = await fetch(`http://${addr}/metrics`).then((r) => r.text());
    assertStringIncludes(
      metrics,
      'tbot_reload_hook_runs_total{service="web",hook="signal",result="failure"} 1',
    );
    assertStringIncludes(
      metrics,
      'tbot_reload_hook_runs_total{service="web",hook="signal",result="success"} 1',
    );
    assertStringIncludes(metrics, 'tbot_reload_hook_last_exit_code{service="envdump"} 0');
    assertStringIncludes(
      metrics,
      'tbot_reload_hook_duration_seconds_count{service="web",hook="signal"} 2',
    );
  } finally {
    if (server) {
      server.kill("SIGTERM");
      await server.status;
    }
    try {
      d.kill("SIGTERM");
    } catch { /* exited */ }
    await d.exited();
    await served.stop();
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("reload hook: a hung hook is killed at its timeout and the other outputs are still written", async () => {
  const s = await setup();
  const served = await s.cluster.serve();
  const yaml = tbotYaml({
    address: served.address,
    storage: s.storage,
    pins: [s.cluster.pin],
    secret: s.secret,
  }).replace(
    "outputs: []",
    [
      "outputs:",
      ...identityOutput(`${s.dir}/hung`, "hung", ["exec: [sleep, '600']", "timeout: 1s"]),
      "  - type: identity",
      "    name: plain",
      "    destination:",
      "      type: directory",
      `      path: ${s.dir}/plain`,
    ].join("\n"),
  );
  await Deno.writeTextFile(s.config, yaml);
  try {
    const started = performance.now();
    const run = await runTbot(["start", "-c", s.config, "--oneshot"]);
    const seconds = (performance.now() - started) / 1000;
    assertEquals(run.code, 0, run.stderr);
    assertStringIncludes(run.stderr, "reload hook killed at its timeout");
    assert(/service=hung .*killed_by=SIGKILL/.test(run.stderr), run.stderr);
    assert(seconds < 300, `the run ended long before the hook's sleep (${seconds}s)`);
    await Deno.stat(`${s.dir}/plain/tlscert`);
    await Deno.stat(`${s.dir}/hung/tlscert`);
  } finally {
    await served.stop();
    await Deno.remove(s.dir, { recursive: true });
  }
});
