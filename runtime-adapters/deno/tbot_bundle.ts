/**
 * tbot's prebuilt bundle (`deno task tbot-bundle`, scripts/tbot_bundle.ts):
 * where it lives and when it may run. A bundle runs only if it was built from
 * exactly the bytes of this checkout's sources: its manifest lists every
 * local module of tbot's graph plus deno.json and deno.lock (the npm versions),
 * and their SHA-256 fingerprint must match before the launcher imports it.
 * Any difference (an edited file, another Deno) and tbot runs from the
 * sources instead, so a stale bundle is never what runs.
 *
 * This module imports nothing: the launcher loads it before tbot's graph.
 *
 * @module
 */

/** Where `deno task tbot-bundle` writes (git-ignored build output). */
export const TBOT_BUNDLE_DIR: URL = new URL("../../dist/tbot-bundle/", import.meta.url);

/** The repository root the manifest's paths are relative to. */
export const TBOT_SOURCE_ROOT: URL = new URL("../../", import.meta.url);

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
  return new Uint8Array(await crypto.subtle.digest("SHA-256", all)).toHex();
}

/** Reads the manifest in `dir`; undefined when there is no bundle. */
export function readTbotBundleManifest(dir: URL = TBOT_BUNDLE_DIR): TbotBundleManifest | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(new URL("manifest.json", dir)));
  } catch {
    return undefined;
  }
}

/**
 * The URL of the bundled main module if a bundle exists in `dir` and was
 * built from the sources under `root` as they are now, with this Deno;
 * undefined otherwise.
 */
export async function freshTbotBundle(
  dir: URL = TBOT_BUNDLE_DIR,
  root: URL = TBOT_SOURCE_ROOT,
): Promise<string | undefined> {
  const manifest = readTbotBundleManifest(dir);
  if (!manifest || manifest.deno !== Deno.version.deno) return undefined;
  let fingerprint: string;
  try {
    fingerprint = await sourceFingerprint(manifest.files, root);
  } catch {
    return undefined; // a source was removed or renamed since the build
  }
  if (fingerprint !== manifest.fingerprint) return undefined;
  return new URL(`${fingerprint}/${manifest.main}`, dir).href;
}
