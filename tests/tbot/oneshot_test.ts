import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { clusterWithBot } from "../agent/_cluster.ts";
import { dirSnapshot, runTbot, tbotYaml } from "./_harness.ts";

async function setup(limit = 1) {
  const { cluster, secret } = await clusterWithBot(limit);
  const served = await cluster.serve();
  const dir = await Deno.makeTempDir({ prefix: "tbot-oneshot-" });
  const config = `${dir}/tbot.yaml`;
  const storage = `${dir}/bot`;
  const output = `${dir}/out`;
  return {
    cluster,
    served,
    dir,
    config,
    storage,
    output,
    secret,
    write: (extra: Partial<Parameters<typeof tbotYaml>[0]> = {}) =>
      Deno.writeTextFile(
        config,
        tbotYaml({
          address: served.address,
          storage,
          pins: [cluster.pin],
          secret,
          output,
          ...extra,
        }),
      ),
    async [Symbol.asyncDispose]() {
      await served.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const mode = async (path: string) => (await Deno.stat(path)).mode! & 0o777;

Deno.test("oneshot: joins over HTTPS trusting only the CA pin, writes storage and outputs, exits 0", async () => {
  await using s = await setup();
  await s.write();
  const r = await runTbot(["start", "-c", s.config, "--oneshot"]);
  assertEquals(r.code, 0, r.stderr);
  assertEquals(await mode(s.storage), 0o700);
  for (
    const f of [
      "id_bkp",
      "id_bkp.pub",
      "bkp_state",
      "bkp_key_history.json",
      "key",
      "tlscert",
      "tokenhash",
      "host_ca.pem",
      "lock",
    ]
  ) {
    assertEquals(await mode(`${s.storage}/${f}`), 0o600, f);
  }
  for (const f of ["key", "key.pub", "key-cert.pub", "tlscert", "tlscacerts", "sshcacerts"]) {
    assertEquals(await mode(`${s.output}/${f}`), 0o600, f);
  }
  assertEquals(await Deno.readTextFile(`${s.storage}/host_ca.pem`), s.cluster.hostCaPem);
  assert(!r.stderr.includes(s.secret), "the registration secret is never logged");
  const state = await Deno.readTextFile(`${s.storage}/bkp_state`);
  assert(!r.stderr.includes(state), "the join state is never logged");
  assert(!r.stderr.includes("PRIVATE KEY"));

  // Restart: a refresh, no recovery consumed, the same bot instance.
  const again = await runTbot(["start", "-c", s.config, "--oneshot", "--log-format", "json"]);
  assertEquals(again.code, 0, again.stderr);
  for (const line of again.stderr.trim().split("\n")) JSON.parse(line);
  assertStringIncludes(again.stderr, '"msg":"renewed the bot identity"');
  assertEquals((await s.cluster.token("example")).status!.bound_keypair!.recovery_count, 1);
  const instances = await s.cluster.instances("example");
  assertEquals(instances.length, 1);
  assertEquals(instances[0].status.latest_authentications.at(-1)!.generation, 2);
  const hb = instances[0].status.latest_heartbeats.at(-1)!;
  assertEquals(hb.one_shot, true);
  assertEquals(hb.version, "0.1.0");
});

Deno.test("oneshot: expired certificates recover once; at the limit a clear refusal; raising it recovers", async () => {
  await using s = await setup(1);
  await s.write({ extra: "credential_ttl: 1s" });
  assertEquals((await runTbot(["start", "-c", s.config, "--oneshot"])).code, 0);
  await new Promise((r) => setTimeout(r, 1500)); // let the 1 s certificate expire
  const before = await dirSnapshot(s.storage);
  const refused = await runTbot(["start", "-c", s.config, "--oneshot"]);
  assertEquals(refused.code, 1);
  const errors = refused.stderr.split("\n").filter((l) => l.includes("ERROR"));
  assertEquals(errors.length, 1, refused.stderr);
  assertStringIncludes(errors[0], "NO_RECOVERIES_REMAINING");
  assertStringIncludes(errors[0], "raising spec.bound_keypair.recovery.limit on token/example");
  assertEquals(await dirSnapshot(s.storage), before, "no key lost, nothing changed");

  await s.cluster.setRecoveryLimit("example", 2);
  const ok = await runTbot(["start", "-c", s.config, "--oneshot"]);
  assertEquals(ok.code, 0, ok.stderr);
  assertStringIncludes(ok.stderr, "recovered: joined again as a new bot instance");
  assertEquals((await s.cluster.token("example")).status!.bound_keypair!.recovery_count, 2);
  assertEquals((await s.cluster.instances("example")).length, 2);
});

Deno.test("storage copied to a second host: the token is locked and both are refused", async () => {
  await using s = await setup(5);
  await s.write();
  assertEquals((await runTbot(["start", "-c", s.config, "--oneshot"])).code, 0);
  const copy = `${s.dir}/copy`;
  await Deno.mkdir(copy, { mode: 0o700 });
  for await (const e of Deno.readDir(s.storage)) {
    if (e.isFile && e.name !== "lock") {
      await Deno.copyFile(`${s.storage}/${e.name}`, `${copy}/${e.name}`);
    }
  }
  const copyConfig = `${s.dir}/copy.yaml`;
  await Deno.writeTextFile(
    copyConfig,
    tbotYaml({
      address: s.served.address,
      storage: copy,
      pins: [s.cluster.pin],
      output: `${s.dir}/out2`,
    }),
  );
  const first = await runTbot(["start", "-c", s.config, "--oneshot"]);
  assertEquals(first.code, 0, first.stderr);
  const second = await runTbot(["start", "-c", copyConfig, "--oneshot"]);
  assertEquals(second.code, 1);
  assertStringIncludes(second.stderr, "GENERATION_MISMATCH");
  assertStringIncludes(second.stderr, "tctl rm lock/");
  const original = await runTbot(["start", "-c", s.config, "--oneshot"]);
  assertEquals(original.code, 1);
  assertStringIncludes(original.stderr, "(LOCKED)");
  const locks = await s.cluster.locks();
  assertEquals(locks.length, 1);
  assertEquals(locks[0].spec.target.join_token, "example");
});

Deno.test("trust: a wrong CA pin is refused before anything is sent; no key lost", async () => {
  await using s = await setup();
  await s.write();
  assertEquals((await runTbot(["start", "-c", s.config, "--oneshot"])).code, 0);
  await Deno.remove(`${s.storage}/host_ca.pem`);
  const before = await dirSnapshot(s.storage);
  const wrong = "sha256:" + "0".repeat(64);
  await s.write({ pins: [wrong] });
  const r = await runTbot(["start", "-c", s.config, "--oneshot"]);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "matches none of onboarding.ca_pins");
  assertStringIncludes(r.stderr, s.cluster.pin);
  assertEquals(await dirSnapshot(s.storage), before);
});

Deno.test("trust: ca_path, and insecure with a loud warning", async () => {
  await using s = await setup(3);
  await Deno.writeTextFile(`${s.dir}/ca.pem`, s.cluster.hostCaPem);
  await s.write({ pins: undefined, caPath: `${s.dir}/ca.pem` });
  const r = await runTbot(["start", "-c", s.config, "--oneshot"]);
  assertEquals(r.code, 0, r.stderr);
  await s.write({ pins: undefined, extra: "insecure: true" });
  const i = await runTbot(["start", "-c", s.config, "--oneshot"]);
  assertEquals(i.code, 0, i.stderr);
  assertStringIncludes(i.stderr, "WARN  INSECURE: the auth service's identity is NOT verified");
  // The runs above saved the cluster's host CA from their join results' trust bundles
  // (docs/protocol.md §10); forget it, so only the system roots are left to trust.
  for (const f of ["host_ca.pem", "host_ca_pins", "trust_bundle.json"]) {
    await Deno.remove(`${s.storage}/${f}`).catch(() => {});
  }
  await s.write({ pins: undefined });
  const system = await runTbot(["start", "-c", s.config, "--oneshot"]);
  assertEquals(system.code, 1, "a private CA is not in the system roots");
});

Deno.test("rotation: the next run rotates the bound key; the old key stays in the history", async () => {
  await using s = await setup();
  await s.write();
  assertEquals((await runTbot(["start", "-c", s.config, "--oneshot"])).code, 0);
  const oldKey = await Deno.readTextFile(`${s.storage}/id_bkp.pub`);
  await s.cluster.rotate("example");
  const r = await runTbot(["start", "-c", s.config, "--oneshot"]);
  assertEquals(r.code, 0, r.stderr);
  assertStringIncludes(r.stderr, "generated a new bound keypair for rotation");
  const newKey = await Deno.readTextFile(`${s.storage}/id_bkp.pub`);
  assert(newKey !== oldKey);
  assertEquals(
    (await s.cluster.token("example")).status!.bound_keypair!.bound_public_key,
    newKey.trim(),
  );
  const history = JSON.parse(await Deno.readTextFile(`${s.storage}/bkp_key_history.json`)).entries;
  assertEquals(history.length, 2);
  assertEquals((await s.cluster.token("example")).status!.bound_keypair!.recovery_count, 1);
});
