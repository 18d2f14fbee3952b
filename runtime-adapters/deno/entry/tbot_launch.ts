/**
 * Entry point of the `tbot` task (`bin/tbot`, the systemd unit `tbot install
 * systemd` writes): runs tbot from the bundle `deno task tbot-bundle` built
 * when that bundle matches this checkout's sources byte for byte
 * (../tbot_bundle.ts), else from the sources, as ./tbot.ts does, after one
 * log line on standard error that says why.
 *
 * Neither import below names its module literally: Deno loads the module
 * graph behind a literal `import("…")` at start-up even when it never runs
 * (+4.5 MiB and ~5 % of a oneshot's CPU), and a bundle replaces that graph.
 * `deno compile` therefore builds from ./tbot.ts, whose literal import gives
 * it the graph to embed.
 *
 * @module
 */
import { runProgram } from "./run.ts";
import { fallbackLogLine, TBOT_SOURCE_ROOT, tbotBundle } from "../tbot_bundle.ts";
import { guardNodeEnv, missingPermission, type NodeProcess } from "../permissions.ts";

const SOURCES = new URL("../tbot_main.ts", import.meta.url).href;

/**
 * Why this launcher cannot run under a narrowed --allow-read, or undefined:
 * it loads tbot (the bundle, else the sources) and checks the bundle by
 * imports and reads below the checkout, none of them named literally, and
 * Deno asks --allow-read for each (a terminal would be prompted). Asked
 * first (../permissions.ts); ./tbot.ts needs no read of its own.
 */
function unreadableCheckout(): string | undefined {
  const root = decodeURIComponent(TBOT_SOURCE_ROOT.pathname).replace(/\/$/, "");
  const missing = missingPermission({ name: "read", path: root });
  return missing &&
    `${missing} (the tbot task's launcher loads tbot from there): add ${root} to ` +
      "--allow-read, or start runtime-adapters/deno/entry/tbot.ts";
}

const unreadable = unreadableCheckout();
if (unreadable) {
  console.error(`tbot: error [CONFIG_INVALID]: ${unreadable}`);
  Deno.exit(1);
}

await runProgram(async () => {
  const bundle = await tbotBundle();
  if ("url" in bundle) return await import(bundle.url);
  console.error(await fallbackLogLine(bundle, Deno.args));
  // The sources run npm packages as npm, whose code reads Node's `process.env`:
  // guarded before any of them runs (a narrowed --allow-env would prompt a
  // terminal). The bundle's dependencies read no variable, and touching
  // `process` loads Deno's Node layer (+1.8 MB), so the bundle is left without.
  guardNodeEnv((globalThis as unknown as { process: NodeProcess }).process);
  return await import(SOURCES);
});
