/**
 * The modules a `tbot start` loads, and nothing else (bench helper): the
 * entry's program module plus what it imports on first use for a oneshot or
 * a daemon with a diagnostics listener, started with a config file (the
 * bench's are; the YAML reader is loaded only for one). Timing this beside a oneshot splits
 * the oneshot into start-up the agent's code cannot avoid (Deno, the npm
 * dependencies, our modules' top-level code) and the agent's own work. With
 * `hold` it prints `ready` and waits, so its resident memory can be read: the
 * floor under the daemon's RSS.
 *
 * Like the `tbot` task's launcher, it loads them from tbot's bundle when one
 * matches the sources (`deno task tbot-bundle`): the main module and the
 * chunks esbuild named after the same modules. `sources` as the first
 * argument loads the sources whatever the bundle.
 *
 * @module
 */
import { freshTbotBundle } from "../runtime-adapters/deno/tbot_bundle.ts";

/** The modules, as source paths relative to the repository. */
const MODULES = [
  "runtime-adapters/deno/tbot_main.ts",
  "src/cli/tbot/start.ts",
  "runtime-adapters/deno/trust.ts",
  "src/agent/diag_app.ts",
  "src/agent/config/load.ts",
];

async function bundled(main: string): Promise<string[]> {
  const dir = new URL(".", main);
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return MODULES.map((m) => {
    const base = m.split("/").pop()!.replace(/\.ts$/, "");
    const file = names.find((n) => n === `${base}.js` || n.startsWith(`${base}-`));
    if (!file) throw new Error(`no chunk for ${m} in ${dir}`);
    return new URL(file, dir).href;
  });
}

const main = Deno.args.includes("sources") ? undefined : await freshTbotBundle();
const urls = main
  ? await bundled(main)
  : MODULES.map((m) => new URL(`../${m}`, import.meta.url).href);
await Promise.all(urls.map((u) => import(u)));
if (Deno.args.includes("hold")) {
  console.log(main ? "ready (bundle)" : "ready (sources)");
  setInterval(() => {}, 60_000);
}
