/**
 * tbot's prebuilt bundle (`deno task tbot-bundle`, scripts/tbot_bundle.ts):
 * where it lives and when it may run. The launcher imports a bundle only if
 *
 * - its manifest is well-formed (checked field by field here, without zod:
 *   this module runs before tbot's graph and stays light) and lists at least
 *   the graph's root module, this check, the build script, deno.json and
 *   deno.lock — so a manifest with an empty or cut-down list is refused;
 * - the SHA-256 fingerprint over the Deno version and every listed source
 *   (path, length, bytes) equals the manifest's: an edited source, another
 *   Deno, and tbot runs from the sources instead;
 * - its directory holds exactly the bundle files the manifest names, each
 *   with the SHA-256 recorded at build time: a truncated, half-copied or
 *   edited bundle file, or an extra one, and tbot runs from the sources.
 *
 * What this does not guarantee: the list of sources is the one `deno info`
 * gave at build time, and the launcher cannot recompute it cheaply, so a new
 * module that nothing listed imports is only noticed through the edit of
 * the listed module that imports it; the bundle files are checked once, at
 * start, not again when a running daemon imports a lazy chunk; and whoever
 * can write dist/ can write the manifest too (this guards against damage and
 * staleness, not against an attacker with write access to the checkout).
 *
 * A process running from a bundle holds a shared lock on its main file for
 * its lifetime, so `deno task tbot-bundle --prune` keeps builds in use.
 *
 * This module imports nothing when it loads (tbot's logger only for the
 * launcher's log line, {@linkcode fallbackLogLine}).
 *
 * @module
 */

/** Where `deno task tbot-bundle` writes (git-ignored build output). */
export const TBOT_BUNDLE_DIR: URL = new URL("../../dist/tbot-bundle/", import.meta.url);

/** The repository root the manifest's paths are relative to. */
export const TBOT_SOURCE_ROOT: URL = new URL("../../", import.meta.url);

/**
 * Sources every tbot bundle's manifest must list: the graph's root module,
 * how the bundle is built and checked, and the npm versions.
 */
export const TBOT_REQUIRED_SOURCES: readonly string[] = [
  "runtime-adapters/deno/tbot_main.ts",
  "runtime-adapters/deno/tbot_bundle.ts",
  "scripts/tbot_bundle.ts",
  "deno.json",
  "deno.lock",
];

/** `manifest.json` in {@linkcode TBOT_BUNDLE_DIR}. */
export interface TbotBundleManifest {
  /** The Deno version that bundled it (`Deno.version.deno`). */
  deno: string;
  /** {@linkcode sourceFingerprint} of `files` at build time; also the bundle's directory. */
  fingerprint: string;
  /** The bundled module exporting tbot's `main`, relative to the fingerprint directory. */
  main: string;
  /** Root-relative paths of the sources the bundle was built from. */
  files: string[];
  /** Every file of the fingerprint directory (name → SHA-256, hex); `main` among them. */
  bundle: Record<string, string>;
}

const HEX64 = /^[0-9a-f]{64}$/;
const SOURCE_PATH = /^[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*(\/[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*)*$/;
const BUNDLE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * `value` as a manifest if it is one exactly (no other fields, every field
 * of its type, paths that stay inside the root and the bundle directory, the
 * required sources listed, `main` among the bundle files); else undefined.
 */
export function parseTbotBundleManifest(value: unknown): TbotBundleManifest | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const m = value as Record<string, unknown>;
  const keys = Object.keys(m).sort().join(",");
  if (keys !== "bundle,deno,files,fingerprint,main") return undefined;
  const { deno, fingerprint, main, files, bundle } = m;
  if (typeof deno !== "string" || typeof fingerprint !== "string" || !HEX64.test(fingerprint)) {
    return undefined;
  }
  if (!Array.isArray(files) || !files.every((f) => typeof f === "string" && SOURCE_PATH.test(f))) {
    return undefined;
  }
  if (new Set(files).size !== files.length) return undefined;
  if (!TBOT_REQUIRED_SOURCES.every((f) => files.includes(f))) return undefined;
  if (typeof bundle !== "object" || bundle === null || Array.isArray(bundle)) return undefined;
  const names = Object.entries(bundle);
  if (!names.every(([n, h]) => BUNDLE_NAME.test(n) && typeof h === "string" && HEX64.test(h))) {
    return undefined;
  }
  if (typeof main !== "string" || !Object.hasOwn(bundle, main)) return undefined;
  return { deno, fingerprint, main, files, bundle: bundle as Record<string, string> };
}

/**
 * SHA-256 (hex) over the Deno version and each file's path (relative to
 * `root`), length and bytes, in the order given. Throws if a file cannot be
 * read.
 */
export async function sourceFingerprint(
  files: readonly string[],
  root: URL = TBOT_SOURCE_ROOT,
): Promise<string> {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [enc.encode(`deno ${Deno.version.deno}\0`)];
  for (const f of files) {
    const bytes = Deno.readFileSync(new URL(f, root));
    parts.push(enc.encode(`${f}\0${bytes.length}\0`), bytes);
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return await sha256Hex(all);
}

/** SHA-256 of `bytes`, hex. */
export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)).toHex();
}

/**
 * Name → SHA-256 (hex) of every entry of the directory `dir`; undefined if
 * it cannot be read or holds anything but plain files.
 */
export async function bundleFileHashes(dir: URL): Promise<Record<string, string> | undefined> {
  try {
    const hashes: [string, string][] = [];
    // One file at a time: as fast as all at once here, and only one file's
    // bytes are held (the whole bundle is ~1.6 MB).
    for (const e of Deno.readDirSync(dir)) {
      if (!e.isFile) return undefined;
      hashes.push([e.name, await sha256Hex(Deno.readFileSync(new URL(e.name, dir)))]);
    }
    return Object.fromEntries(hashes.sort(([a], [b]) => a < b ? -1 : 1));
  } catch {
    return undefined;
  }
}

/** Reads and checks the manifest in `dir`; undefined when there is none or it is malformed. */
export function readTbotBundleManifest(dir: URL = TBOT_BUNDLE_DIR): TbotBundleManifest | undefined {
  try {
    return parseTbotBundleManifest(
      JSON.parse(Deno.readTextFileSync(new URL("manifest.json", dir))),
    );
  } catch {
    return undefined;
  }
}

/** The main file of the build a process runs from, locked (shared) while it lives. */
let inUse: Deno.FsFile | undefined;

/**
 * Whether the bundle in `dir` may run (see the module's description): the
 * URL of its main module, or why not (one sentence, for the launcher's log
 * line: {@linkcode fallbackLogLine}). `missing` says there is no bundle at all
 * (no manifest), as opposed to one that is refused. When it returns a URL,
 * this process holds a shared lock on that build's main file until it exits
 * (`--prune` keeps a locked build).
 */
export async function tbotBundle(
  dir: URL = TBOT_BUNDLE_DIR,
  root: URL = TBOT_SOURCE_ROOT,
): Promise<{ url: string } | { reason: string; missing?: true }> {
  let text: string;
  try {
    text = Deno.readTextFileSync(new URL("manifest.json", dir));
  } catch (err) {
    // Only an absent manifest is "no bundle"; one that is there but cannot be
    // read (a directory, no permission) is a bundle refused (review2 N4).
    if (err instanceof Deno.errors.NotFound) {
      return { reason: "no bundle (deno task tbot-bundle builds one)", missing: true };
    }
    return { reason: "the bundle's manifest cannot be read" };
  }
  let manifest: TbotBundleManifest | undefined;
  try {
    manifest = parseTbotBundleManifest(JSON.parse(text));
  } catch {
    // Not JSON: refused below like any other malformed manifest.
  }
  if (!manifest) return { reason: "the bundle's manifest is malformed" };
  if (manifest.deno !== Deno.version.deno) {
    return {
      reason: `the bundle was built by deno ${manifest.deno}, this is ${Deno.version.deno}`,
    };
  }
  const build = new URL(`${manifest.fingerprint}/`, dir);
  const mainUrl = new URL(manifest.main, build);
  let lock: Deno.FsFile;
  try {
    // Locked before the files are checked: a prune that removes this build
    // either finishes first (the check then fails) or finds it locked.
    lock = await Deno.open(mainUrl, { read: true });
  } catch {
    return { reason: "the bundle's main file cannot be opened" };
  }
  let reason: string | undefined;
  try {
    await lock.lock(false);
    const [fingerprint, files] = await Promise.all([
      sourceFingerprint(manifest.files, root).catch(() => undefined),
      bundleFileHashes(build),
    ]);
    if (fingerprint === undefined) reason = "a source the bundle was built from cannot be read";
    else if (fingerprint !== manifest.fingerprint) {
      reason = "the sources changed since the bundle was built";
    } else if (!files || !sameHashes(files, manifest.bundle)) {
      reason = "the bundle's files differ from those it was built with";
    }
  } catch {
    reason = "the bundle's main file cannot be locked";
  }
  if (reason !== undefined) {
    lock.close();
    return { reason };
  }
  inUse?.close();
  inUse = lock;
  return { url: mainUrl.href };
}

/**
 * The URL of the bundled main module if {@linkcode tbotBundle} allows it;
 * undefined otherwise.
 */
export async function freshTbotBundle(
  dir: URL = TBOT_BUNDLE_DIR,
  root: URL = TBOT_SOURCE_ROOT,
): Promise<string | undefined> {
  const b = await tbotBundle(dir, root);
  return "url" in b ? b.url : undefined;
}

/**
 * What this uses of src/util/log.ts, stated here: even a type-only import
 * would put that module in the launcher's graph (tests/tbot/startup_imports_test.ts).
 */
interface LogModule {
  createLogger(options: {
    format: "text" | "json";
    component: string;
    write: (line: string) => void;
    now: () => Date;
  }): Record<"info" | "warn", (msg: string, fields: Record<string, unknown>) => void>;
}

/** tbot's logger module, loaded only when a line is logged (see {@linkcode fallbackLogLine}). */
const LOG_MODULE = new URL("../../src/util/log.ts", import.meta.url).href;

/**
 * The launcher's log line when tbot runs from the sources, written by tbot's
 * one logger (src/util/log.ts, which escapes what `reason` may quote from a
 * manifest, only a file on disk): JSON when `args` ask for `--log-format
 * json`, level INFO when there is no bundle and WARN when one is refused.
 * The logger is imported here, on this path only, and not by name: a bundled
 * start would otherwise load it from the sources beside the bundle's own copy
 * (+0.9 MiB peak for that module alone).
 */
export async function fallbackLogLine(
  fallback: { reason: string; missing?: true },
  args: readonly string[],
  now: Date = new Date(),
): Promise<string> {
  const { createLogger }: LogModule = await import(LOG_MODULE);
  const json = args.some((a, i) =>
    a === "--log-format=json" || (a === "--log-format" && args[i + 1] === "json")
  );
  let line = "";
  const log = createLogger({
    format: json ? "json" : "text",
    component: "tbot",
    write: (l) => line = l,
    now: () => now,
  });
  log[fallback.missing ? "info" : "warn"]("running from the sources, not the bundle", {
    reason: fallback.reason,
  });
  return line;
}

function sameHashes(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length &&
    ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}
