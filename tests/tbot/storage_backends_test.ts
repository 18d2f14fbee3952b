import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { clusterWithBot } from "../agent/_cluster.ts";
import { runTbot, tbotYaml } from "./_harness.ts";

async function setup() {
  const { cluster, secret } = await clusterWithBot();
  const served = await cluster.serve();
  const dir = await Deno.makeTempDir({ prefix: "tbot-storage-" });
  return {
    cluster,
    dir,
    config: `${dir}/tbot.yaml`,
    write: (extra: Partial<Parameters<typeof tbotYaml>[0]>) =>
      Deno.writeTextFile(
        `${dir}/tbot.yaml`,
        tbotYaml({
          address: served.address,
          storage: `${dir}/bot`,
          pins: [cluster.pin],
          secret,
          output: `${dir}/out`,
          ...extra,
        }),
      ),
    async [Symbol.asyncDispose]() {
      await served.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
/** A KEK file as `openssl rand -base64 32` writes it. */
async function writeKek(path: string): Promise<void> {
  const raw = crypto.getRandomValues(new Uint8Array(32));
  await Deno.writeTextFile(path, btoa(String.fromCharCode(...raw)) + "\n", { mode: 0o600 });
}

/** The stored bound key's bytes, read straight from the KV database. */
async function storedBoundKey(dbPath: string): Promise<Uint8Array | null> {
  const kv = await Deno.openKv(dbPath);
  try {
    return (await kv.get<Uint8Array>(["tbot", "files", "id_bkp"])).value;
  } finally {
    kv.close();
  }
}

Deno.test("deno_kv storage: a oneshot joins, and the next run refreshes with no recovery consumed", async () => {
  await using s = await setup();
  const db = `${s.dir}/bot.kv`;
  await writeKek(`${s.dir}/kek`);
  await s.write({ storageType: "deno_kv", storage: db, kekPath: `${s.dir}/kek` });

  const first = await runTbot(["start", "-c", s.config, "--oneshot"]);
  assertEquals(first.code, 0, first.stderr);
  const sealed = await storedBoundKey(db);
  assert(sealed !== null, "the bound key is kept in the database");
  assert(
    new TextDecoder().decode(sealed).startsWith("KEYBOUND-SEALED-V1 "),
    "the bound key rests sealed",
  );
  await Deno.stat(`${s.dir}/out/tlscert`);
  assert(!first.stderr.includes("rest unencrypted"), first.stderr);

  const again = await runTbot(["start", "-c", s.config, "--oneshot"]);
  assertEquals(again.code, 0, again.stderr);
  assertStringIncludes(again.stderr, "renewed the bot identity");
  assertEquals((await s.cluster.token("example")).status!.bound_keypair!.recovery_count, 1);
  const instances = await s.cluster.instances("example");
  assertEquals(instances.length, 1);
  assertEquals(instances[0].status.latest_authentications.at(-1)!.generation, 2);
});

Deno.test("storage.kek_path: a wrong KEK fails clearly and leaves the stored key unchanged", async () => {
  await using s = await setup();
  const db = `${s.dir}/bot.kv`;
  await writeKek(`${s.dir}/kek`);
  await s.write({ storageType: "deno_kv", storage: db, kekPath: `${s.dir}/kek` });
  assertEquals((await runTbot(["start", "-c", s.config, "--oneshot"])).code, 0);
  const before = await storedBoundKey(db);

  await writeKek(`${s.dir}/other-kek`);
  await s.write({ storageType: "deno_kv", storage: db, kekPath: `${s.dir}/other-kek` });
  // The config's kek_path wins over the environment's (correct) KEK file.
  const r = await runTbot(["start", "-c", s.config, "--oneshot"], {
    TBOT_STORAGE_KEK_PATH: `${s.dir}/kek`,
  });
  assertEquals(r.code, 1, r.stderr);
  // Start-up reads the sealed files concurrently: whichever is opened first is named.
  assert(/file "(id_bkp|key)" in Deno KV database/.test(r.stderr), r.stderr);
  assertStringIncludes(r.stderr, "sealed with another key-encryption key");
  assertStringIncludes(r.stderr, "left untouched");
  assertEquals(await storedBoundKey(db), before);
  assertEquals((await s.cluster.token("example")).status!.bound_keypair!.recovery_count, 1);
});

Deno.test("storage: deno_kv without a path is refused, naming the field", async () => {
  await using s = await setup();
  await Deno.writeTextFile(
    s.config,
    "version: v2\nauth_server: 127.0.0.1:1\nonboarding: {join_method: bound_keypair, token: x}\n" +
      "storage: {type: deno_kv}\n",
  );
  const r = await runTbot(["start", "-c", s.config, "--oneshot"]);
  assertEquals(r.code, 1);
  assertStringIncludes(r.stderr, "storage.path");
  assertStringIncludes(r.stderr, "Deno KV database file");
});
