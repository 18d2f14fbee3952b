import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { waitUntil } from "../_wait.ts";
import { type Cluster, clusterWithBot } from "../agent/_cluster.ts";
import { runTbot, spawnTbot, type TbotDaemon, tbotYaml } from "./_harness.ts";

async function latestGeneration(cluster: Cluster): Promise<number> {
  const [instance] = await cluster.instances("example");
  return instance?.status.latest_authentications.at(-1)?.generation ?? 0;
}

const until = (cond: () => Promise<boolean>, what: string) =>
  waitUntil(cond, what, { timeoutMs: 30_000, intervalMs: 50 });

async function diagAddr(d: TbotDaemon): Promise<string> {
  await d.waitForLog(/diagnostics listening component=tbot addr=\S+/);
  return /diagnostics listening component=tbot addr=(\S+)/.exec(d.log())![1];
}

async function setup() {
  const { cluster, secret } = await clusterWithBot();
  const dir = await Deno.makeTempDir({ prefix: "tbot-daemon-" });
  return { cluster, secret, dir, config: `${dir}/tbot.yaml`, storage: `${dir}/bot` };
}

Deno.test("daemon: ready on /readyz, renews on SIGHUP, exits cleanly on SIGTERM", async () => {
  const s = await setup();
  const served = await s.cluster.serve();
  await Deno.writeTextFile(
    s.config,
    tbotYaml({
      address: served.address,
      storage: s.storage,
      pins: [s.cluster.pin],
      secret: s.secret,
      output: `${s.dir}/out`,
      extra: "diag_addr: 127.0.0.1:0",
    }),
  );
  const d = spawnTbot(["start", "-c", s.config, "--pid-file", `${s.dir}/tbot.pid`]);
  try {
    const addr = await diagAddr(d);
    const wait = await runTbot(["wait", "--diag-addr", addr, "--timeout", "30s"]);
    assertEquals(wait.code, 0, wait.stderr);
    const ready = await fetch(`http://${addr}/readyz`);
    assertEquals(ready.status, 200);
    const body = await ready.json();
    assertEquals(Object.keys(body.services).sort(), ["heartbeat", "identity", "identity-output-1"]);
    assertEquals(await fetch(`http://${addr}/livez`).then((r) => r.text()), "OK");
    assertStringIncludes(
      await fetch(`http://${addr}/metrics`).then((r) => r.text()),
      "tbot_identity_expiry_timestamp_seconds ",
    );
    assertEquals((await Deno.readTextFile(`${s.dir}/tbot.pid`)).trim(), String(d.child.pid));

    const busy = await runTbot(["start", "-c", s.config, "--oneshot"]);
    assertEquals(busy.code, 1);
    assertStringIncludes(busy.stderr, "is tbot already running?");

    const generation = await latestGeneration(s.cluster);
    d.kill("SIGHUP");
    await until(
      async () => await latestGeneration(s.cluster) === generation + 1,
      "the SIGHUP renewal",
    );

    const [instance] = await s.cluster.instances("example");
    assert(instance.status.latest_heartbeats.some((h) => h.is_startup && !h.one_shot));

    d.kill("SIGTERM");
    assertEquals(await d.exited(), 0);
    assertStringIncludes(d.log(), "stopping component=tbot signal=SIGTERM");
    await Deno.stat(`${s.dir}/tbot.pid`).then(() => assert(false, "pid file removed"), () => {});
    const after = await runTbot(["start", "-c", s.config, "--oneshot"]);
    assertEquals(after.code, 0, "the lock is released at exit");
  } finally {
    try {
      d.kill("SIGKILL");
    } catch { /* already exited */ }
    await d.exited();
    await served.stop();
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("daemon: survives the auth service going down and recovers when it is back", async () => {
  const s = await setup();
  let served = await s.cluster.serve();
  const port = served.port;
  await Deno.writeTextFile(
    s.config,
    tbotYaml({
      address: served.address,
      storage: s.storage,
      pins: [s.cluster.pin],
      secret: s.secret,
      extra: "diag_addr: 127.0.0.1:0",
    }),
  );
  const d = spawnTbot(["start", "-c", s.config]);
  try {
    const addr = await diagAddr(d);
    assertEquals((await runTbot(["wait", "--diag-addr", addr])).code, 0);
    const generation = await latestGeneration(s.cluster);
    await served.stop();
    d.kill("SIGHUP");
    await d.waitForLog(/bot-identity-renewal failed; retrying/);
    served = await s.cluster.serve(port);
    await until(
      async () => await latestGeneration(s.cluster) === generation + 1,
      "the renewal after the outage",
    );
    const identity = await fetch(`http://${addr}/readyz/identity`).then((r) => r.json());
    assertEquals(identity.status, "healthy");
    d.kill("SIGINT");
    assertEquals(await d.exited(), 0);
  } finally {
    try {
      d.kill("SIGKILL");
    } catch { /* already exited */ }
    await d.exited();
    await served.stop();
    await Deno.remove(s.dir, { recursive: true });
  }
});
