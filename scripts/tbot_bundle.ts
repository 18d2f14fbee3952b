/**
 * `deno task tbot-bundle`: bundles tbot (runtime-adapters/deno/tbot_main.ts
 * and everything it imports, split at its dynamic imports) with `deno bundle`
 * into `dist/tbot-bundle/<fingerprint>/`, and writes the manifest the `tbot`
 * task's launcher checks (runtime-adapters/deno/tbot_bundle.ts). From a
 * bundle a oneshot loads a few files instead of ~110 modules of ours, ~200
 * files of zod, jose and yaml, and yaml through Deno's CommonJS loader
 * (docs/benchmarks.md, "Session 6: tbotload").
 *
 * The manifest records each bundle file's SHA-256; the launcher checks them
 * before it imports anything. Earlier builds stay (a running daemon still
 * imports its lazy chunks from its own directory); `--prune` removes the
 * builds that are neither the current one nor in use by a running tbot
 * (which holds a shared lock on its build's main file). `--check` only
 * reports whether the bundle matches the sources (exit 1 if not).
 *
 * @module
 */
import {
  bundleFileHashes,
  freshTbotBundle,
  sourceFingerprint,
  TBOT_BUNDLE_DIR,
  TBOT_SOURCE_ROOT,
  type TbotBundleManifest,
} from "../runtime-adapters/deno/tbot_bundle.ts";

const ROOT = decodeURIComponent(TBOT_SOURCE_ROOT.pathname);
const OUT = decodeURIComponent(TBOT_BUNDLE_DIR.pathname);
const ENTRY = "runtime-adapters/deno/tbot_main.ts";
/** A program the bundle runs with `deno run`; it imports only `node:` modules. */
const PROBE = "runtime-adapters/deno/first_contact_probe.ts";
/** The probe's name in the bundle's directory, beside the chunks. */
const PROBE_FILE = PROBE.split("/").pop()!;
/** The `tbot` task's entry point, which imports the bundle. */
const LAUNCHER = "runtime-adapters/deno/entry/tbot_launch.ts";

async function deno(args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno ${args[0]} failed:\n${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/**
 * The sources a bundle of tbot depends on: every local module reachable from
 * tbot's main module (static and dynamic imports), deno.json and deno.lock,
 * and this script and the launcher's check (how it was built).
 */
export async function tbotSources(): Promise<string[]> {
  const info = JSON.parse(await deno(["info", "--json", ENTRY])) as {
    modules: { specifier: string }[];
  };
  const local = info.modules.map((m) => m.specifier).filter((s) => s.startsWith("file:"))
    .map((s) => decodeURIComponent(new URL(s).pathname));
  for (const s of local) {
    if (!s.startsWith(ROOT)) throw new Error(`tbot imports ${s}, outside the repository`);
  }
  return [
    ...local.map((s) => s.slice(ROOT.length)),
    "deno.json",
    "deno.lock",
    "scripts/tbot_bundle.ts",
    "runtime-adapters/deno/tbot_bundle.ts",
  ].sort();
}

/** `.env` or `["env"]` (optionally `?.`) after what comes before it. */
const ENV_MEMBER = /\s*(?:\?\.|\.)\s*env\b|\s*(?:\?\.)?\s*\[\s*["'`]env["'`]\s*\]/.source;

/**
 * The ways bundled JavaScript reads Node's `process.env`, as esbuild (`deno
 * bundle`) writes them, by what each is called in an error. Not only the
 * global's `process.env`: a CommonJS dependency's `require("process")`
 * becomes `var node_process = __require("node:process")` and
 * `node_process.env.LOG_TOKENS` (yaml's Node build), an ES import a renamed
 * binding such as `process2` or `import_node_process.default`. So any import
 * of the module is refused, and `.env` after any name ending in `process`
 * (`globalThis.process.env` too). The global itself is not: the bundle reads
 * `globalThis.process.getgroups` when it checks a hook's program
 * (runtime-adapters/deno/permissions.ts); a copy of it read for `.env`
 * later would get through.
 */
const NODE_ENV_READS: readonly [string, RegExp][] = [
  [
    "imports the process module",
    /(?:from|import|require)\s*\(?\s*["'`](?:node:)?process["'`]/,
  ],
  [
    "reads process.env",
    new RegExp(
      `process(?:[\\w$]*|["'\`]\\s*\\])(?:\\s*(?:\\?\\.|\\.)\\s*default)?(?:${ENV_MEMBER})`,
    ),
  ],
  [
    "takes env out of process",
    /\{[^{}]*\benv\b[^{}]*\}\s*=\s*[\w$.]*process\b/,
  ],
];

/**
 * How the bundled JavaScript `js` reads Node's `process.env` (the first of
 * the shapes above it matches), or undefined: `deno task tbot-bundle` refuses a
 * bundle that does.
 */
export function nodeEnvRead(js: string): string | undefined {
  return NODE_ENV_READS.find(([, shape]) => shape.test(js))?.[0];
}

/** Builds the bundle; returns its manifest. */
export async function buildTbotBundle(): Promise<TbotBundleManifest> {
  const files = await tbotSources();
  const fingerprint = await sourceFingerprint(files);
  const dir = `${OUT}${fingerprint}`;
  const tmp = `${dir}.tmp-${Deno.pid}`;
  const main = "tbot_main.js";
  await Deno.mkdir(OUT, { recursive: true });
  // A directory is renamed into place only once complete, and the same sources
  // bundle to the same files: an existing one whose files are those of a
  // fresh build is kept, never rewritten under a daemon that still loads
  // chunks from it; a damaged one is replaced.
  await deno([
    "bundle",
    "--quiet",
    // Browser conditions: yaml then resolves to its ES module build, not its
    // CommonJS one, so the bundle needs no `require` shim and Deno never sets
    // up its CommonJS loader (`node:module`: +19 ms CPU, +9 MiB on its own).
    "--platform",
    "browser",
    "--external",
    "node:*",
    "--format",
    "esm",
    "--code-splitting",
    "--outdir",
    tmp,
    ENTRY,
  ]);
  // Node's `process.env` is guarded only where npm packages run as npm (the
  // sources' entry points): the bundle never touches `process`, which would load
  // Deno's Node layer for good (docs/benchmarks.md, "Session 13: tbot"). A
  // dependency that reads it would, from the bundle, read unguarded: under a
  // narrowed --allow-env, Deno would prompt a terminal. Refused here.
  for await (const e of Deno.readDir(tmp)) {
    if (!e.name.endsWith(".js")) continue;
    const read = nodeEnvRead(await Deno.readTextFile(`${tmp}/${e.name}`));
    if (read) {
      await Deno.remove(tmp, { recursive: true });
      throw new Error(
        `the tbot bundle's ${e.name} reads Node's process.env (${read}), which only the ` +
          "sources' entry points guard (runtime-adapters/deno/permissions.ts, guardNodeEnv)",
      );
    }
  }
  // The CA pin's first contact runs this file in a process of its own
  // (runtime-adapters/deno/trust.ts), found beside the chunk that runs it.
  await Deno.copyFile(`${ROOT}${PROBE}`, `${tmp}/${PROBE_FILE}`);
  const bundle = await bundleFileHashes(
    new URL(`${fingerprint}.tmp-${Deno.pid}/`, TBOT_BUNDLE_DIR),
  );
  if (!bundle || !Object.hasOwn(bundle, main)) throw new Error(`deno bundle wrote no ${main}`);
  const exists = await Deno.stat(dir).then(() => true, (err) => {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  });
  const existing = exists
    ? await bundleFileHashes(new URL(`${fingerprint}/`, TBOT_BUNDLE_DIR))
    : undefined;
  if (existing && JSON.stringify(existing) === JSON.stringify(bundle)) {
    await Deno.remove(tmp, { recursive: true });
  } else {
    if (exists) {
      console.warn(`replacing ${dir}: its files are not those of a fresh build`);
      await Deno.remove(dir, { recursive: true });
    }
    await Deno.rename(tmp, dir);
  }
  // Deno analyses a module's imports the first time it loads it (then caches that
  // in DENO_DIR), and a process that did so for the bundle keeps ~20 MB more for
  // its lifetime: a daemon first started after a build ran at 83-85 MB instead of
  // 63-64 (docs/benchmarks.md, "Session 8: tbot"). Done here once instead, for
  // the bundle's modules and the launcher's; a daemon run with another DENO_DIR
  // (another user) still pays it on its first start. The CA pin's first-contact
  // probe too: its short-lived process then need not transpile it.
  await deno([
    "cache",
    "--no-config",
    "--quiet",
    `${dir}/${main}`,
    `${dir}/${PROBE_FILE}`,
    LAUNCHER,
  ]);
  const manifest: TbotBundleManifest = {
    deno: Deno.version.deno,
    fingerprint,
    main,
    files,
    bundle,
  };
  // The manifest last, by rename: a launcher sees the old bundle or the whole new one.
  const next = `${OUT}manifest.json.tmp-${Deno.pid}`;
  await Deno.writeTextFile(next, JSON.stringify(manifest, null, 2) + "\n");
  await Deno.rename(next, `${OUT}manifest.json`);
  return manifest;
}

/**
 * Removes the builds in `out` other than `keep` that no running tbot uses (a process
 * started from a build holds a shared lock on its main file: its lazy chunks
 * must stay). Returns how many it removed and how many it kept in use.
 */
export async function prune(
  keep: string,
  main: string,
  out: string = OUT,
): Promise<{ removed: number; inUse: number }> {
  let removed = 0, inUse = 0;
  for await (const e of Deno.readDir(out)) {
    if (!e.isDirectory || e.name === keep || !/^[0-9a-f]{64}$/.test(e.name)) continue;
    const dir = `${out}${e.name}`;
    // Held exclusively while removing: a launcher that opened the main file
    // waits, then finds the build gone and runs the sources.
    let f: Deno.FsFile | undefined;
    try {
      f = await Deno.open(`${dir}/${main}`, { read: true });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    try {
      if (f && !(await f.tryLock(true))) {
        inUse++;
        continue;
      }
      await Deno.remove(dir, { recursive: true });
      removed++;
    } finally {
      f?.close();
    }
  }
  return { removed, inUse };
}

if (import.meta.main) {
  if (Deno.args.includes("--check")) {
    const fresh = await freshTbotBundle() !== undefined;
    console.log(
      fresh
        ? "the tbot bundle matches the sources"
        : "no tbot bundle for these sources: deno task tbot-bundle",
    );
    Deno.exit(fresh ? 0 : 1);
  }
  const manifest = await buildTbotBundle();
  console.log(`wrote ${OUT}${manifest.fingerprint}/ (${manifest.files.length} sources)`);
  if (Deno.args.includes("--prune")) {
    const { removed, inUse } = await prune(manifest.fingerprint, manifest.main);
    console.log(`removed ${removed} older builds; kept ${inUse} in use by a running tbot`);
  }
}
