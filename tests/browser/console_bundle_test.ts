/**
 * The committed console client bundle is what `deno task console-build`
 * makes from this checkout: a change to client.ts or anything it imports from
 * src/ must come with a rebuilt client.js.
 *
 * @module
 */
import { assert } from "../_assert.ts";
import { buildConsoleClient, CONSOLE_CLIENT_BUNDLE } from "../../scripts/build_console.ts";

Deno.test("console client.js is up to date (else: deno task console-build)", async () => {
  const committed = await Deno.readTextFile(CONSOLE_CLIENT_BUNDLE);
  const fresh = await buildConsoleClient();
  assert(
    committed === fresh,
    "runtime-adapters/browser/console/client.js is stale: run deno task console-build",
  );
});
