/**
 * Command-line front of ./build.ts for deploying: bundles a Worker entry
 * point into one ES module at the given path (for wrangler's `main`).
 *
 * Usage: deno run -A runtime-adapters/workers/build_cli.ts ENTRY OUTPUT
 *
 * @module
 */
import { bundleWorker } from "./build.ts";

if (import.meta.main) {
  const [entry, output] = Deno.args;
  if (!entry || !output) {
    console.error(
      "usage: build_cli.ts ENTRY OUTPUT   (e.g. runtime-adapters/workers/bot_worker.ts dist/bot-worker.js)",
    );
    Deno.exit(2);
  }
  await using bundle = await bundleWorker(entry);
  const dir = output.includes("/") ? output.slice(0, output.lastIndexOf("/")) : ".";
  await Deno.mkdir(dir, { recursive: true });
  await Deno.copyFile(bundle.path, output);
  console.log(`wrote ${output}`);
}
