/**
 * tbot's prebuilt bundle (`deno task tbot-bundle`): it runs only for the
 * exact sources it was built from, and a real one runs a oneshot against a
 * real auth service.
 */
import { assert, assertEquals, assertNotEquals, assertRejects } from "../_assert.ts";
import { runTbot, TBOT_SECURITY_VARIABLES } from "./_harness.ts";
import { TBOT_DENO_FLAGS } from "../../runtime-adapters/deno/tbot_main.ts";
import { ignoreUnless } from "../_tools.ts";
import { noScript, onTerminal } from "../cli/_terminal.ts";
import { servedBot } from "./_served_bot.ts";
import {
  bundleFileHashes,
  fallbackLogLine,
  freshTbotBundle,
  parseTbotBundleManifest,
  sourceFingerprint,
  TBOT_BUNDLE_DIR,
  TBOT_REQUIRED_SOURCES,
  tbotBundle,
  type TbotBundleManifest,
} from "../../runtime-adapters/deno/tbot_bundle.ts";
import { buildTbotBundle, nodeEnvRead, prune } from "../../scripts/tbot_bundle.ts";

const LAUNCHER = new URL("../../runtime-adapters/deno/entry/tbot_launch.ts", import.meta.url)
  .pathname;

/** A fake checkout and a fake build of it under `tmp`: sources, bundle files, manifest. */
async function fakeBuild(tmp: string) {
  const root = new URL(`file://${tmp}/src/`);
  const dir = new URL(`file://${tmp}/bundle/`);
  const files = [...TBOT_REQUIRED_SOURCES, "a.ts", "lib/b.ts"].sort();
  for (const f of files) {
    await Deno.mkdir(new URL(".", new URL(f, root)), { recursive: true });
    await Deno.writeTextFile(new URL(f, root), `// ${f}\n`);
  }
  await Deno.writeTextFile(new URL("lib/b.ts", root), "export const b = 2;\n");
  const fingerprint = await sourceFingerprint(files, root);
  const build = new URL(`${fingerprint}/`, dir);
  await Deno.mkdir(build, { recursive: true });
  await Deno.writeTextFile(new URL("tbot_main.js", build), 'import "./chunk-A.js";\n');
  await Deno.writeTextFile(new URL("chunk-A.js", build), "export const a = 1;\n");
  const manifest: TbotBundleManifest = {
    deno: Deno.version.deno,
    fingerprint,
    main: "tbot_main.js",
    files,
    bundle: (await bundleFileHashes(build))!,
  };
  const writeManifest = (m: unknown) =>
    Deno.writeTextFile(new URL("manifest.json", dir), JSON.stringify(m));
  await writeManifest(manifest);
  return { root, dir, build, files, fingerprint, manifest, writeManifest };
}

Deno.test("tbot bundle: used only while every source it was built from is unchanged", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "tbot-bundle-" });
  try {
    const { root, dir, fingerprint, manifest, writeManifest } = await fakeBuild(tmp);
    const main = new URL(`${fingerprint}/tbot_main.js`, dir).href;
    assertEquals(await freshTbotBundle(dir, root), main);
    await Deno.remove(new URL("manifest.json", dir));
    assertEquals(await freshTbotBundle(dir, root), undefined, "no manifest, no bundle");
    await writeManifest(manifest);
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

Deno.test("tbot bundle: the launcher is told why it runs the sources, in one escaped log line", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "tbot-bundle-why-" });
  try {
    const { root, dir, build, manifest, writeManifest } = await fakeBuild(tmp);
    const why = async () => {
      const b = await tbotBundle(dir, root);
      return "reason" in b ? b : undefined;
    };
    assertEquals(await why(), undefined, "fresh");
    await Deno.writeTextFile(new URL("lib/b.ts", root), "export const b = 3;\n");
    assertEquals(await why(), { reason: "the sources changed since the bundle was built" });
    await Deno.writeTextFile(new URL("lib/b.ts", root), "export const b = 2;\n");
    await Deno.writeTextFile(new URL("chunk-A.js", build), "export const a = 2;\n");
    assertEquals(await why(), {
      reason: "the bundle's files differ from those it was built with",
    });
    await Deno.writeTextFile(new URL("chunk-A.js", build), "export const a = 1;\n");
    assertEquals(await why(), undefined, "restored");
    await writeManifest({ ...manifest, files: [] });
    assertEquals(await why(), { reason: "the bundle's manifest is malformed" });
    await Deno.remove(new URL("manifest.json", dir));
    // A manifest that is there but cannot be read is refused, not "no bundle" (review2 N4).
    await Deno.mkdir(new URL("manifest.json", dir));
    assertEquals(await why(), { reason: "the bundle's manifest cannot be read" });
    await Deno.remove(new URL("manifest.json", dir));
    const missing = await why();
    assertEquals(missing?.missing, true, "no bundle at all");

    // The Deno version is whatever the manifest says: its control and
    // non-ASCII characters reach the line escaped, in text and in JSON.
    await writeManifest({ ...manifest, deno: "9.9.9\n\u001b[31m\u2028x" });
    const other = (await why())!;
    assert(other.reason.includes("deno 9.9.9\n"), other.reason);
    const at = new Date("2026-12-02T15:00:00Z");
    const text = await fallbackLogLine(other, ["start"], at);
    assertEquals(
      text,
      "2026-12-02T15:00:00.000Z WARN  running from the sources, not the bundle component=tbot " +
        `reason="the bundle was built by deno 9.9.9\\n\\u001b[31m\\u2028x, this is ${Deno.version.deno}"`,
    );
    assert(/^[\x20-\x7e]+$/.test(text), "printable ASCII only");
    for (const args of [["start", "--log-format=json"], ["start", "--log-format", "json"]]) {
      const json = await fallbackLogLine(other, args, at);
      assert(/^[\x20-\x7e]+$/.test(json), "printable ASCII only");
      assertEquals(JSON.parse(json), {
        time: "2026-12-02T15:00:00.000Z",
        level: "warn",
        msg: "running from the sources, not the bundle",
        component: "tbot",
        reason: other.reason,
      });
    }
    assert((await fallbackLogLine(missing!, [], at)).includes(" INFO  running from the sources"));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("tbot bundle: a bundle file edited, cut short, missing or added, and the sources run", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "tbot-bundle-files-" });
  try {
    const { root, dir, build } = await fakeBuild(tmp);
    const main = new URL("tbot_main.js", build).href;
    assertEquals(await freshTbotBundle(dir, root), main);
    const chunk = new URL("chunk-A.js", build);
    const original = await Deno.readTextFile(chunk);

    // A lazily imported chunk edited, truncated (a half-done copy), or removed.
    await Deno.writeTextFile(chunk, 'console.error("TAMPERED");\n' + original);
    assertEquals(await freshTbotBundle(dir, root), undefined, "edited");
    await Deno.writeTextFile(chunk, original.slice(0, 5));
    assertEquals(await freshTbotBundle(dir, root), undefined, "truncated");
    await Deno.remove(chunk);
    assertEquals(await freshTbotBundle(dir, root), undefined, "missing");
    await Deno.writeTextFile(chunk, original);
    assertEquals(await freshTbotBundle(dir, root), main);

    // A file the build did not write, or a directory, in the build's directory.
    await Deno.writeTextFile(new URL("extra.js", build), "");
    assertEquals(await freshTbotBundle(dir, root), undefined, "extra file");
    await Deno.remove(new URL("extra.js", build));
    await Deno.mkdir(new URL("sub", build));
    assertEquals(await freshTbotBundle(dir, root), undefined, "a directory");
    await Deno.remove(new URL("sub", build));
    assertEquals(await freshTbotBundle(dir, root), main);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("tbot bundle: a manifest that is not exactly one is refused, an empty source list included", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "tbot-bundle-manifest-" });
  try {
    const { root, dir, manifest, writeManifest } = await fakeBuild(tmp);
    assert(parseTbotBundleManifest(manifest));
    const emptyPrint = await sourceFingerprint([], root);
    const bad: [string, unknown][] = [
      ["no sources, their fingerprint", { ...manifest, files: [], fingerprint: emptyPrint }],
      ["the root module left out", {
        ...manifest,
        files: manifest.files.filter((f) => f !== "runtime-adapters/deno/tbot_main.ts"),
      }],
      ["a source twice", { ...manifest, files: [...manifest.files, "a.ts"] }],
      ["a source outside the root", { ...manifest, files: [...manifest.files, "../x.ts"] }],
      ["an absolute source", { ...manifest, files: [...manifest.files, "/etc/passwd"] }],
      ["a source by URL", { ...manifest, files: [...manifest.files, "https://x/y.ts"] }],
      ["no bundle hashes", { ...manifest, bundle: undefined }],
      ["main not among them", { ...manifest, main: "other.js" }],
      ["a bundle name with a path", {
        ...manifest,
        bundle: { ...manifest.bundle, "../a": "0".repeat(64) },
      }],
      ["a hash that is not one", {
        ...manifest,
        bundle: { ...manifest.bundle, "tbot_main.js": "x" },
      }],
      ["a fingerprint that is a path", { ...manifest, fingerprint: "../../x" }],
      ["another field", { ...manifest, extra: 1 }],
      ["not an object", [manifest]],
    ];
    for (const [what, m] of bad) {
      assertEquals(parseTbotBundleManifest(m), undefined, what);
      await writeManifest(m);
      assertEquals(await freshTbotBundle(dir, root), undefined, what);
    }
    await Deno.writeTextFile(new URL("manifest.json", dir), "{");
    assertEquals(await freshTbotBundle(dir, root), undefined, "not JSON");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("tbot bundle: --prune keeps a build a running tbot imports from, removes unused ones", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "tbot-bundle-prune-" });
  try {
    const { root, dir, fingerprint } = await fakeBuild(tmp);
    const unused = "f".repeat(64);
    await Deno.mkdir(new URL(`${unused}/`, dir));
    await Deno.writeTextFile(new URL(`${unused}/tbot_main.js`, dir), "");
    const out = decodeURIComponent(dir.pathname);

    // Another process starts from the build the way the launcher does, and stays.
    const check = new URL("../../runtime-adapters/deno/tbot_bundle.ts", import.meta.url).href;
    const running = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `const { freshTbotBundle } = await import(${JSON.stringify(check)});
         console.log(await freshTbotBundle(new URL(${JSON.stringify(dir.href)}), new URL(${
          JSON.stringify(root.href)
        })));
         await Deno.stdin.readable.pipeTo(new WritableStream());`,
      ],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const lines = running.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const first = (await lines.read()).value ?? "";
    assert(first.includes(`${fingerprint}/tbot_main.js`), `it runs from the build: ${first}`);

    // A newer build is current: the one in use stays, the unused one goes.
    assertEquals(await prune("0".repeat(64), "tbot_main.js", out), { removed: 1, inUse: 1 });
    assert(await Deno.stat(new URL(`${fingerprint}/chunk-A.js`, dir)), "its chunks are there");
    await assertRejects(() => Deno.stat(new URL(`${unused}/`, dir)));

    // Once it has exited, the build goes too.
    await running.stdin.close();
    await lines.cancel();
    await running.status;
    assertEquals(await prune("0".repeat(64), "tbot_main.js", out), { removed: 1, inUse: 0 });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("tbot bundle: a chunk that reads Node's process.env is refused, in each shape esbuild writes", async () => {
  // yaml bundled as tbot bundles it (browser conditions: its ES module build) reads
  // nothing; its Node build, which a `--platform deno` bundle resolves, reads
  // LOG_TOKENS and LOG_STREAM through `require("process")`, which esbuild writes
  // as `node_process.env.LOG_TOKENS`: missed by a plain /\bprocess\.env\b/ (review-perf S2).
  const tmp = await Deno.makeTempDir({ prefix: "tbot-bundle-env-" });
  try {
    await Deno.writeTextFile(
      `${tmp}/y.ts`,
      'import { parse } from "yaml";\nconsole.log(parse("a: 1"));\n',
    );
    const yamlAs = async (platform: string) => {
      const out = `${tmp}/${platform}.js`;
      const built = await new Deno.Command(Deno.execPath(), {
        args: [
          "bundle",
          "--quiet",
          "--config",
          new URL("../../deno.json", import.meta.url).pathname,
          "--platform",
          platform,
          "--external",
          "node:*",
          "--format",
          "esm",
          "-o",
          out,
          `${tmp}/y.ts`,
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
      assertEquals(built.code, 0, new TextDecoder().decode(built.stderr));
      return await Deno.readTextFile(out);
    };
    const nodeBuild = await yamlAs("deno");
    assert(nodeBuild.includes("node_process.env.LOG_TOKENS"), "yaml's Node build reads LOG_TOKENS");
    assertEquals(nodeEnvRead(nodeBuild), "imports the process module");
    assertEquals(nodeEnvRead(await yamlAs("browser")), undefined, "yaml's ES module build");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  const reads: [string, string][] = [
    ["if (node_process.env.LOG_TOKENS) log();", "reads process.env"],
    ["import_node_process.default.env.X", "reads process.env"],
    ["process2.env.X", "reads process.env"],
    ["process.env.X", "reads process.env"],
    ["process?.env", "reads process.env"],
    ['process["env"].X', "reads process.env"],
    ["globalThis.process.env.X", "reads process.env"],
    ['globalThis["process"]?.["env"]', "reads process.env"],
    ["const { env } = globalThis.process;", "takes env out of process"],
    ['var node_process = __require("node:process");', "imports the process module"],
    ['import process2 from "node:process";', "imports the process module"],
    ['import { env } from "process";', "imports the process module"],
    ['await import("node:process")', "imports the process module"],
  ];
  for (const [js, shape] of reads) assertEquals(nodeEnvRead(js), shape, js);
  // What tbot's own bundle has: the word in text, Deno's env, the global's getgroups.
  for (
    const js of [
      "another tbot process is using the storage",
      'Deno.env.get("TBOT_DEBUG")',
      "const node = globalThis.process; node?.getgroups?.();",
      "subprocess; processEnv.get(x)",
    ]
  ) assertEquals(nodeEnvRead(js), undefined, js);
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
    assert(!run.stderr.includes("running from the sources"), run.stderr);
    assert((await Deno.readTextFile(`${bot.dir}/out/tlscert`)).includes("BEGIN CERTIFICATE"));
  }
  // The same flags on the sources fail: the assertion above can tell them apart.
  const source = await runTbot(["version"], {}, { denoFlags: ["--no-npm"] });
  assertNotEquals(source.code, 0);

  // The real bundle's main file edited: the launcher runs the sources, not it.
  const mainFile = new URL(manifest.main, dir);
  const original = await Deno.readFile(mainFile);
  try {
    await Deno.writeTextFile(mainFile, 'console.error("TAMPERED BUNDLE RUNS");\n');
    await Deno.writeFile(mainFile, original, { append: true });
    assertEquals(await freshTbotBundle(), undefined);
    const tampered = await runTbot(["version"], {}, { entry: LAUNCHER });
    assertEquals(tampered.code, 0, tampered.stderr);
    assert(!tampered.stderr.includes("TAMPERED"), "the edited bundle did not run");
    assert(
      tampered.stderr.includes(
        "WARN  running from the sources, not the bundle component=tbot " +
          `reason="the bundle's files differ from those it was built with"`,
      ),
      tampered.stderr,
    );
    assert(tampered.stdout.includes("tbot v"), tampered.stdout);
  } finally {
    await Deno.writeFile(mainFile, original);
  }
  assert(await freshTbotBundle(), "restored");
});

Deno.test({
  name: "tbot bundle: the tbot task's launcher runs the bundle on a terminal under a narrowed " +
    "--allow-env and --deny-env=LOG_TOKENS, and asks nothing",
  ignore: ignoreUnless("narrowed permissions test", noScript()),
}, async () => {
  // The bundle has no guard on Node's process.env (the sources' entry points
  // have): nothing in it may read a variable outside --allow-env, or Deno would
  // prompt the terminal. tests/tbot/narrowed_permissions_test.ts runs the sources.
  if (!await freshTbotBundle()) await buildTbotBundle();
  await using bot = await servedBot("tbot-bundle-env-");
  const storage = `${bot.dir}/bot`;
  await bot.writeConfig({ storage });
  // With deno allowed, the pin's first contact runs in a child; without, in
  // tbot's process (node:tls and node:net loaded there).
  for (const denoAllowed of [true, false]) {
    await Deno.remove(`${storage}/host_ca.pem`).catch(() => {});
    await Deno.remove(`${storage}/host_ca_pins`).catch(() => {});
    const flags = TBOT_DENO_FLAGS.map((f) =>
      f === "--allow-env"
        ? `--allow-env=HOME,${TBOT_SECURITY_VARIABLES.join(",")}`
        : f === "--allow-run" && !denoAllowed
        ? "--allow-run=/usr/bin/true"
        : f
    );
    // Set, not allowed (reading one would prompt) or denied (a read would throw).
    const env = ["env", "TBOT_DEBUG=1", "LOG_TOKENS=1", "LOG_STREAM=1", "NODE_ENV=x"];
    const run = await onTerminal([
      ...env,
      Deno.execPath(),
      "run",
      ...flags,
      "--deny-env=LOG_TOKENS",
      LAUNCHER,
      "start",
      "-c",
      bot.config,
      "--oneshot",
    ], bot.dir);
    assert(!run.prompted, `Deno prompted:\n${run.shown}`);
    assertEquals(run.code, 0, run.shown);
    assert(!run.shown.includes("running from the sources"), run.shown);
    assertEquals(
      run.shown.includes("the CA pin's first contact runs in this process"),
      !denoAllowed,
      run.shown,
    );
    assert(!run.shown.includes(" DEBUG "), "TBOT_DEBUG was not readable");
  }
});
