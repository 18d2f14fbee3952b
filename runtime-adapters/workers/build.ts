/**
 * Bundles a Worker entry point (TypeScript, importing the npm dependencies in
 * deno.json) into one ES module that workerd can load. It runs `deno bundle`
 * (esbuild inside Deno) with browser conditions, so packages such as jose pick
 * their WebCrypto builds; `cloudflare:*` modules stay external because workerd
 * provides them.
 *
 * This is a build tool that runs on Deno, not Worker code. Bundles go to a
 * fresh temporary directory and are never written into the checkout.
 *
 * @module
 */

const PROJECT_CONFIG = new URL("../../deno.json", import.meta.url);

/** A bundled Worker script on disk; disposing it removes its directory. */
export interface WorkerBundle extends AsyncDisposable {
  /** Directory holding the bundle. */
  dir: string;
  /** Absolute path of the bundled ES module. */
  path: string;
  /** Removes {@linkcode WorkerBundle.dir}. */
  remove(): Promise<void>;
}

/**
 * Bundles `entry` into a single ES module in a new temporary directory.
 *
 * @param entry the entry point (a path or file URL)
 * @param options `minify` the output
 * @returns the bundle; remove it when done (or `await using` it)
 * @throws Error carrying `deno bundle`'s diagnostics when bundling fails
 */
export async function bundleWorker(
  entry: string | URL,
  options: { minify?: boolean } = {},
): Promise<WorkerBundle> {
  const dir = await Deno.makeTempDir({ prefix: "keybound-worker-" });
  const path = `${dir}/worker.js`;
  const entryPath = entry instanceof URL ? decodeURIComponent(entry.pathname) : entry;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--config",
      decodeURIComponent(PROJECT_CONFIG.pathname),
      "--platform",
      "browser",
      "--format",
      "esm",
      "--external",
      "cloudflare:*",
      ...(options.minify ? ["--minify"] : []),
      "--output",
      path,
      entryPath,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const remove = () => Deno.remove(dir, { recursive: true }).catch(() => {});
  if (!out.success) {
    await remove();
    const diagnostics = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`deno bundle failed for ${entryPath}:\n${diagnostics}`);
  }
  return { dir, path, remove, [Symbol.asyncDispose]: remove };
}
