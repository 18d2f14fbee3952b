/**
 * Reads the fleet console's files (runtime-adapters/browser/console/) for the
 * auth service to serve under `/web/`: the pages, styles and the bundled
 * client module, not their TypeScript source.
 *
 * @module
 */
import {
  CONSOLE_MEDIA_TYPES,
  type ConsoleAsset,
  type ConsoleAssets,
} from "../../src/server/web/assets.ts";

/** The console's folder. */
export const CONSOLE_DIR = new URL("../browser/console/", import.meta.url);

/** Loads every servable file of `dir` (html, js, css, svg) into memory. */
export async function loadConsoleAssets(dir: URL = CONSOLE_DIR): Promise<ConsoleAssets> {
  const assets = new Map<string, ConsoleAsset>();
  for await (const entry of Deno.readDir(dir)) {
    const ext = entry.name.split(".").pop() ?? "";
    const type = CONSOLE_MEDIA_TYPES[ext];
    if (!entry.isFile || type === undefined) continue;
    assets.set(entry.name, { body: await Deno.readFile(new URL(entry.name, dir)), type });
  }
  return assets;
}
