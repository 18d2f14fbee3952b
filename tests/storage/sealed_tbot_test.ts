/**
 * Sealed keys end to end with the real tbot (a subprocess, as in
 * tests/tbot/): with `TBOT_STORAGE_KEK` the private-key files in the storage
 * directory rest sealed while outputs stay usable; a restart with the same
 * KEK refreshes; a wrong or missing KEK stops tbot with a clear error and
 * leaves every stored file as it was.
 *
 * @module
 */
import { SEALED_MAGIC } from "../../src/agent/sealed_keys.ts";
import { toHex } from "../../src/util/encoding.ts";
import { clusterWithBot } from "../agent/_cluster.ts";
import { dirSnapshot, runTbot, tbotYaml } from "../tbot/_harness.ts";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";

const newKek = () => toHex(crypto.getRandomValues(new Uint8Array(32)));

Deno.test("tbot with TBOT_STORAGE_KEK: keys rest sealed; a wrong or missing KEK changes nothing", async () => {
  const { cluster, secret } = await clusterWithBot();
  const served = await cluster.serve();
  const dir = await Deno.makeTempDir({ prefix: "tbot-sealed-" });
  try {
    const storage = `${dir}/bot`;
    const output = `${dir}/out`;
    const config = `${dir}/tbot.yaml`;
    await Deno.writeTextFile(
      config,
      tbotYaml({ address: served.address, storage, pins: [cluster.pin], secret, output }),
    );
    const kek = newKek();
    const start = (env: Record<string, string>) =>
      runTbot(["start", "-c", config, "--oneshot"], env);

    const first = await start({ TBOT_STORAGE_KEK: kek });
    assertEquals(first.code, 0, first.stderr);
    for (const f of ["id_bkp", "bkp_key_history.json", "key"]) {
      const text = await Deno.readTextFile(`${storage}/${f}`);
      assert(text.startsWith(SEALED_MAGIC), `${f} is not sealed`);
      assert(!text.includes("PRIVATE KEY"), `${f} leaks a PEM`);
    }
    assertStringIncludes(await Deno.readTextFile(`${output}/key`), "PRIVATE KEY");
    assert(!first.stderr.includes("unencrypted"), first.stderr);
    assert(!first.stderr.includes(kek), "the KEK is never logged");

    const again = await start({ TBOT_STORAGE_KEK: kek });
    assertEquals(again.code, 0, again.stderr);
    assertStringIncludes(again.stderr, "renewed the bot identity");

    const before = await dirSnapshot(storage);
    const wrong = await start({ TBOT_STORAGE_KEK: newKek() });
    assert(wrong.code !== 0, "tbot ran with the wrong KEK");
    assertStringIncludes(wrong.stderr, "another key-encryption key");
    const none = await start({});
    assert(none.code !== 0, "tbot ran without the KEK");
    assertStringIncludes(none.stderr, "none is configured");
    const after = await dirSnapshot(storage);
    for (const f of ["id_bkp", "bkp_key_history.json", "bkp_state", "key", "tlscert"]) {
      assertEquals(after[f], before[f], `${f} changed`);
    }
    assertEquals((await cluster.token("example")).status!.bound_keypair!.recovery_count, 1);
  } finally {
    await served.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
