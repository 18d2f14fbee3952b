/**
 * tbot's prebuilt bundle (`deno task tbot-bundle`): it runs only for the
 * exact sources it was built from, and a real one runs a oneshot against a
 * real auth service.
 */
import { assert, assertEquals, assertNotEquals } from "../_assert.ts";
import { runTbot } from "./_harness.ts";
import { servedBot } from "./_served_bot.ts";
import {
  freshTbotBundle,
  sourceFingerprint,
  TBOT_BUNDLE_DIR,
  type TbotBundleManifest,
} from "../../runtime-adapters/deno/tbot_bundle.ts";
import { buildTbotBundle } from "../../scripts/tbot_bundle.ts";

const LAUNCHER = new URL("../../runtime-adapters/deno/entry/tbot_launch.ts", import.meta.url)
  .pathname;

Deno.test("tbot bundle: used only while every source it was built from is unchanged", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "tbot-bundle-" });
  try {
    const root = new URL(`file://${tmp}/src/`);
    const dir = new URL(`file://${tmp}/bundle/`);
    await Deno.mkdir(new URL("lib/", root), { recursive: true });
    await Deno.mkdir(dir);
    await Deno.writeTextFile(new URL("a.ts", root), "export const a = 1;\n");
    await Deno.writeTextFile(new URL("lib/b.ts", root), "export const b = 2;\n");
    const files = ["a.ts", "lib/b.ts"];
    const fingerprint = await sourceFingerprint(files, root);
    const manifest: TbotBundleManifest = {
      deno: Deno.version.deno,
      fingerprint,
      main: "tbot_main.js",
      files,
    };
    const writeManifest = (m: TbotBundleManifest) =>
      Deno.writeTextFile(new URL("manifest.json", dir), JSON.stringify(m));

    assertEquals(await freshTbotBundle(dir, root), undefined, "no manifest, no bundle");
    await writeManifest(manifest);
    const main = new URL(`${fingerprint}/tbot_main.js`, dir).href;
    assertEquals(await freshTbotBundle(dir, root), main);

    // One byte of one source differs: the sources run.
    await Deno.writeTextFile(new URL("lib/b.ts", root), "export const b = 3;\n");
    assertEquals(await freshTbotBundle(dir, root), undefined);
    await Deno.writeTextFile(new URL("lib/b.ts", root), "export const b = 2;\n");
    assertEquals(await freshTbotBundle(dir, root), main);

    // A file's bytes moved to another path: a different fingerprint.
    assertNotEquals(await sourceFingerprint(["lib/b.ts", "a.ts"], root), fingerprint);

    // Bundled by another Deno, or a source gone: the sources run.
    await writeManifest({ ...manifest, deno: "0.0.1" });
    assertEquals(await freshTbotBundle(dir, root), undefined);
    await writeManifest(manifest);
    await Deno.remove(new URL("a.ts", root));
    assertEquals(await freshTbotBundle(dir, root), undefined);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("tbot bundle: the tbot task's launcher runs a oneshot from a fresh bundle", async () => {
  const manifest = await buildTbotBundle();
  assertEquals(
    await freshTbotBundle(),
    new URL(`${manifest.fingerprint}/${manifest.main}`, TBOT_BUNDLE_DIR).href,
    "the bundle just built matches this checkout",
  );
  assert(manifest.files.includes("src/agent/config/load.ts"), "dynamic imports are sources too");
  assert(manifest.files.includes("deno.lock"));
  assert(manifest.files.includes("scripts/tbot_bundle.ts"), "how it was built is a source too");
  // No chunk sets up Deno's CommonJS loader (yaml's ES module build is bundled,
  // not its CommonJS one): node:module alone costs ~19 ms and ~9 MiB at start.
  const dir = new URL(`${manifest.fingerprint}/`, TBOT_BUNDLE_DIR);
  for await (const e of Deno.readDir(dir)) {
    const text = await Deno.readTextFile(new URL(e.name, dir));
    assert(!text.includes('"node:module"'), `${e.name} imports node:module`);
  }

  // Directory storage, and the Deno KV backend (a chunk of its own, loaded lazily).
  for (const storageType of ["directory", "deno_kv"] as const) {
    await using bot = await servedBot("tbot-bundle-run-");
    await bot.writeConfig({ storage: `${bot.dir}/bot`, storageType, output: `${bot.dir}/out` });
    // --no-npm: tbot's sources import zod, jose and yaml from npm and cannot
    // load without it; the bundle carries them, so this run is the bundle's.
    const run = await runTbot(["start", "-c", bot.config, "--oneshot"], {}, {
      entry: LAUNCHER,
      denoFlags: ["--no-npm"],
    });
    assertEquals(run.code, 0, `${storageType}: ${run.stderr}`);
    assert((await Deno.readTextFile(`${bot.dir}/out/tlscert`)).includes("BEGIN CERTIFICATE"));
  }
  // The same flags on the sources fail: the assertion above can tell them apart.
  const source = await runTbot(["version"], {}, { denoFlags: ["--no-npm"] });
  assertNotEquals(source.code, 0);
});
