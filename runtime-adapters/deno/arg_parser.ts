/**
 * The word splitter of the command-line framework (src/cli/flags) on Deno:
 * `node:util` `parseArgs`, which `src/` may not import itself.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { ArgParser } from "../../src/cli/flags/mod.ts";

/** `parseArgs` in the shape the framework takes. */
export const argParser: ArgParser = parseArgs as unknown as ArgParser;
