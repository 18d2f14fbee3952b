/**
 * What `tbot start` loads before it can work: the modules statically reachable
 * from the program module, `start.ts` and the trust set-up must not include a
 * CommonJS npm package (yaml, asn1-schema/asn1-x509): Deno loads those through
 * its Node compatibility layer, ~30–45 ms and 6–15 MB each at every start
 * (docs/benchmarks.md, "Session 5: tbotstart"). They are loaded with import()
 * where they are needed (the YAML reader for a config file, the full X.509
 * parser for a CA pin's first contact).
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
const STARTUP = [
  "runtime-adapters/deno/tbot_main.ts",
  "src/cli/tbot/start.ts",
  "runtime-adapters/deno/trust.ts",
].map((p) => new URL(p, ROOT).href);
const COMMONJS = ["npm:/yaml@", "npm:/@peculiar/asn1-schema@", "npm:/@peculiar/asn1-x509@"];

interface Info {
  redirects?: Record<string, string>;
  modules: {
    specifier: string;
    dependencies?: { code?: { specifier?: string }; isDynamic?: boolean }[];
  }[];
}

async function graphOf(entry: string): Promise<Info> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL(entry, ROOT).pathname],
    cwd: ROOT.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/**
 * The modules statically reachable from {@linkcode STARTUP}, each with the one
 * that imports it (`""` for the start-up modules), and the graph's edges.
 */
async function startupGraph(): Promise<{ via: Map<string, string>; edges: Map<string, string[]> }> {
  const info = await graphOf("runtime-adapters/deno/entry/tbot.ts");
  const edges = new Map<string, string[]>();
  for (const m of info.modules) {
    const deps = (m.dependencies ?? []).filter((d) => !d.isDynamic && d.code?.specifier)
      .map((d) => info.redirects?.[d.code!.specifier!] ?? d.code!.specifier!);
    edges.set(m.specifier, deps);
  }
  // Every start-up module is in the graph (loaded by import() from the entry).
  for (const s of STARTUP) assert.ok(edges.has(s), `${s} is not reachable from the entry`);
  const via = new Map<string, string>(STARTUP.map((s) => [s, ""]));
  const queue = [...STARTUP];
  while (queue.length) {
    const s = queue.shift()!;
    for (const d of edges.get(s) ?? []) {
      if (!via.has(d)) {
        via.set(d, s);
        queue.push(d);
      }
    }
  }
  return { via, edges };
}

Deno.test("tbot's start-up path statically imports no CommonJS npm package", async () => {
  const { via, edges } = await startupGraph();
  for (const s of via.keys()) {
    if (!COMMONJS.some((c) => s.startsWith(c))) continue;
    const chain = [s];
    for (let p = via.get(s); p; p = via.get(p)) chain.push(p.replace(ROOT.href, ""));
    assert.fail(`tbot start loads ${s} statically: ${chain.join(" <- ")}`);
  }
  // The test sees the graph: the same walk from the YAML reader does find yaml.
  assert.ok(
    (edges.get(new URL("src/agent/config/load.ts", ROOT).href) ?? []).some((d) =>
      d.startsWith(COMMONJS[0])
    ),
  );
});

// Touching Node's `process` loads Deno's Node layer, which a daemon then keeps
// (+1.8 MB idle): its environment guard lives in the entry points that run npm
// packages as npm, not on the path the bundle runs (docs/benchmarks.md,
// "Session 13: tbot").
Deno.test("tbot's start-up path does not import node:process", async () => {
  const { via } = await startupGraph();
  const chain = ["node:process"];
  for (let p = via.get("node:process"); p; p = via.get(p)) chain.push(p.replace(ROOT.href, ""));
  assert.ok(!via.has("node:process"), `tbot start loads ${chain.join(" <- ")}`);
});

// Deno loads the graph behind a literal import() at start-up even if it never
// runs (+4.5 MiB, ~5 % of a oneshot's CPU): the `tbot` task's launcher must
// name neither tbot's sources nor its bundle literally, or running from the
// bundle pays for the sources' graph as well (docs/benchmarks.md, "Session 6").
Deno.test("the tbot task's launcher loads only itself, the SIGUSR1 guard and the bundle check", async () => {
  const info = await graphOf("runtime-adapters/deno/entry/tbot_launch.ts");
  const modules = info.modules.map((m) => m.specifier.replace(ROOT.href, "")).sort();
  assert.deepEqual(modules, [
    "runtime-adapters/deno/cwd.ts",
    "runtime-adapters/deno/entry/inspector_guard.ts",
    "runtime-adapters/deno/entry/run.ts",
    "runtime-adapters/deno/entry/tbot_launch.ts",
    "runtime-adapters/deno/permissions.ts",
    "runtime-adapters/deno/tbot_bundle.ts",
  ]);
});
