import { parseAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { fromBase64, fromUtf8 } from "../../src/util/encoding.ts";
import { assert, assertEquals, assertNotEquals, assertStringIncludes } from "../_assert.ts";
import { newCluster } from "../agent/_cluster.ts";
import { runTbot, tbotYaml } from "./_harness.ts";

async function setup() {
  const cluster = await newCluster();
  await cluster.createBot("example");
  const served = await cluster.serve();
  const dir = await Deno.makeTempDir({ prefix: "tbot-keypair-" });
  return {
    cluster,
    served,
    dir,
    async [Symbol.asyncDispose]() {
      await served.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("keypair create: preregister a key, then join with no secret", async () => {
  await using s = await setup();
  const storage = `${s.dir}/bot`;
  const text = await runTbot([
    "keypair",
    "create",
    "--storage",
    storage,
    "--proxy-server",
    s.served.address,
    "--insecure",
  ]);
  assertEquals(text.code, 0, text.stderr);
  const publicKey = (await Deno.readTextFile(`${storage}/id_bkp.pub`)).trim();
  assertStringIncludes(text.stdout, publicKey);
  assertStringIncludes(text.stdout, "initial_public_key");
  assertStringIncludes(text.stdout, "join_method: bound_keypair");
  assertStringIncludes(text.stderr, "keypair has been written to storage");
  assertEquals((await Deno.stat(`${storage}/id_bkp`)).mode! & 0o777, 0o600);

  // Run again: the existing key is printed, nothing changes.
  const json = await runTbot([
    "keypair",
    "create",
    "--storage",
    `file://${storage}`,
    "--proxy-server",
    s.served.address,
    "--insecure",
    "--format",
    "json",
  ]);
  assertEquals(json.code, 0, json.stderr);
  assertEquals(JSON.parse(json.stdout), { public_key: publicKey });

  await s.cluster.createToken("example", "example", {
    onboarding: { initial_public_key: publicKey },
  });
  await Deno.writeTextFile(
    `${s.dir}/tbot.yaml`,
    tbotYaml({ address: s.served.address, storage, pins: [s.cluster.pin] }),
  );
  const join = await runTbot(["start", "-c", `${s.dir}/tbot.yaml`, "--oneshot"]);
  assertEquals(join.code, 0, join.stderr);
  const bound = await parseAuthorizedKey(
    (await s.cluster.token("example")).status!.bound_keypair!.bound_public_key!,
  );
  assertEquals(bound.blob, (await parseAuthorizedKey(publicKey)).blob);

  const replaced = await runTbot([
    "keypair",
    "create",
    "--storage",
    storage,
    "--proxy-server",
    s.served.address,
    "--insecure",
    "--overwrite",
    "--format",
    "json",
  ]);
  assertNotEquals(JSON.parse(replaced.stdout).public_key, publicKey);
  const history = JSON.parse(await Deno.readTextFile(`${storage}/bkp_key_history.json`)).entries;
  assertEquals(history.length, 2, "the replaced key stays in the history");
});

Deno.test("keypair create --static: a key tbot never stores, used from the environment", async () => {
  await using s = await setup();
  const r = await runTbot([
    "keypair",
    "create",
    "--static",
    "--proxy-server",
    s.served.address,
    "--insecure",
    "--format",
    "json",
  ]);
  assertEquals(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { public_key: string; private_key: string };
  assertStringIncludes(fromUtf8(fromBase64(out.private_key)), "BEGIN PRIVATE KEY");
  await s.cluster.createToken("example", "example", {
    onboarding: { initial_public_key: out.public_key },
    recovery: { limit: 1, mode: "insecure" },
  });
  const storage = `${s.dir}/bot`;
  await Deno.writeTextFile(
    `${s.dir}/tbot.yaml`,
    tbotYaml({ address: s.served.address, storage, pins: [s.cluster.pin] }),
  );
  const join = await runTbot(["start", "-c", `${s.dir}/tbot.yaml`, "--oneshot"], {
    TBOT_BOUND_KEYPAIR_STATIC_KEY: out.private_key,
  });
  assertEquals(join.code, 0, join.stderr);
  assertStringIncludes(join.stderr, "using a static bound key");
  await Deno.stat(`${storage}/id_bkp`).then(
    () => assert(false, "a static key is not stored"),
    () => {},
  );

  const path = `${s.dir}/static.pem`;
  const file = await runTbot([
    "keypair",
    "create",
    "--static",
    "--static-key-path",
    path,
    "--proxy-server",
    s.served.address,
    "--insecure",
  ]);
  assertEquals(file.code, 0, file.stderr);
  assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
  assertStringIncludes(file.stdout, "TBOT_BOUND_KEYPAIR_STATIC_KEY=");
  assertStringIncludes(file.stdout, "mode: insecure");
  const again = await runTbot([
    "keypair",
    "create",
    "--static",
    "--static-key-path",
    path,
    "--proxy-server",
    s.served.address,
    "--insecure",
    "--format",
    "json",
  ]);
  assertEquals(
    JSON.parse(again.stdout).public_key,
    (file.stdout.match(/^ssh-ed25519 \S+$/m) ?? [""])[0],
    "an existing static key is printed, not replaced",
  );
});

Deno.test("keypair create: missing flags are usage errors", async () => {
  const r = await runTbot(["keypair", "create", "--proxy-server", "127.0.0.1:1"]);
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, "--storage is required");
  const p = await runTbot(["keypair", "create", "--storage", "/tmp/x"]);
  assertEquals(p.code, 2);
  assertStringIncludes(
    p.stderr,
    "tbot: error [BAD_PARAMETER]: --proxy-server: required, or --auth-server (or TELEPORT_PROXY / TELEPORT_AUTH_SERVER)",
  );
});
