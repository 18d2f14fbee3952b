/**
 * CPU profile of Durable Object renewals inside workerd (dev tool, not part
 * of `deno task bench`): runs the Worker bot in miniflare with workerd's V8
 * inspector on a free loopback port, takes a sampling profile over the
 * Chrome DevTools Protocol while `renewals` renewals run against a loopback
 * auth service, and prints the functions with the most samples (self time)
 * and by source module of the bundle (npm packages by name), and the
 * profile file's path (open it in Chrome DevTools), then the bundle's
 * functions by inclusive time (a function with what it calls: where the
 * renewal's own code spends, when self time is spread over small helpers;
 * an async function's continuations start stacks of their own, so its
 * callers count only what it runs before its first `await`).
 * The renewal's floor is measured by `deno task bench edge`
 * (tests/workers/renewal_floor_worker.ts); `bench/profile_edge_native.ts`
 * profiles the whole workerd process, outside JavaScript too.
 *
 * workerd freezes its clocks while a request runs, so the profile's sample
 * times are meaningless; the shares of the samples are what to read.
 *
 * `--cold` profiles instead the first renewal after each of `renewals`
 * restarts of workerd on the same stored state (an object evicted between
 * renewals; `tests/workers/do_cold_renewal_bench.ts` measures its CPU): the
 * profiler runs from before the object wakes to the end of that renewal.
 * The profile file is then the last round's.
 *
 * `deno run -A --unstable-kv bench/profile_edge.ts [--cold] [renewals] [out.cpuprofile]`
 *
 * @module
 */
import type { BotIdentityRpc } from "../runtime-adapters/workers/bot_identity_rpc.ts";
import type { DurableObjectNamespace } from "../runtime-adapters/workers/types.ts";
import { bundle, startWorker } from "../tests/workers/_harness.ts";
import { botWorkerOptions, provisionBot } from "../tests/workers/_join_fixture.ts";
import { startLoopbackAuth } from "../tests/workers/_loopback_auth.ts";
import { devtools } from "./join_devtools.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

/**
 * Where each source module starts in the bundle: `deno bundle` writes a
 * `// path` comment before each one. npm packages are named by package.
 */
function sourceModules(bundleText: string): { line: number; name: string }[] {
  const out: { line: number; name: string }[] = [];
  bundleText.split("\n").forEach((text, line) => {
    const path = /^\/\/ (\S+\.(?:m?js|ts))$/.exec(text)?.[1];
    if (!path) return;
    const pkg = /registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)\//.exec(path)?.[1];
    out.push({ line, name: pkg ?? path.replace(/^(\.\.\/)+/, "") });
  });
  return out;
}

/** The module holding 0-based bundle line `line`. */
function moduleAt(modules: { line: number; name: string }[], line: number): string {
  let name = "(bundle prelude)";
  for (const m of modules) {
    if (m.line > line) break;
    name = m.name;
  }
  return name;
}

const cold = Deno.args[0] === "--cold";
const args = cold ? Deno.args.slice(1) : Deno.args;
const renewals = Number(args[0] ?? (cold ? 8 : 150));
const out = args[1] ?? (await Deno.makeTempFile({ suffix: ".cpuprofile" }));
// The limiter is not what is profiled: hundreds of renewals must not turn into retries.
await using auth = await startLoopbackAuth("edge.example", {
  app: { rateLimit: { perSecond: 1e6, burst: 1e6 } },
});
const secret = await provisionBot(auth.api, "profile-bot");
await using script = await bundle(
  new URL("../runtime-adapters/workers/bot_worker.ts", import.meta.url),
);
const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const inspectorPort = (probe.addr as Deno.NetAddr).port;
probe.close();
const persistDir = cold ? await Deno.makeTempDir({ prefix: "keybound-profile-cold-" }) : undefined;
// The bot reaches the auth service through its AUTH binding, as in `deno task
// bench edge`: a global fetch would go through miniflare's outbound
// interceptor, a JavaScript Worker a deployed Worker never runs, and its CPU
// would be profiled as the renewal's. One KEK for every restart (--cold).
const options = botWorkerOptions(auth.url, "profile-bot", secret, "BotIdentity", {
  inspectorPort,
  ...(persistDir ? { persistDir } : {}),
});
/** Starts workerd: the bot's stub and a CDP client on its isolate. */
async function start() {
  const worker = await startWorker(script.path, options);
  const ns = await worker.mf.getDurableObjectNamespace(
    "BOT_IDENTITY",
  ) as unknown as DurableObjectNamespace<BotIdentityRpc>;
  const [target] = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
  const cdp = await devtools(target.webSocketDebuggerUrl);
  await cdp.call("Profiler.enable");
  await cdp.call("Profiler.setSamplingInterval", { interval: cold ? 50 : 100 });
  return { worker, cdp, bot: ns.get(ns.idFromName("profile-bot")) };
}
/** Profiles `work` on `cdp`'s isolate. */
async function profiled(cdp: Awaited<ReturnType<typeof devtools>>, work: () => Promise<void>) {
  await cdp.call("Profiler.start");
  await work();
  const { profile } = await cdp.call<{ profile: Profile }>("Profiler.stop");
  return profile;
}
const renew = async (bot: BotIdentityRpc) => {
  const r = await bot.renew();
  if (!r.ok) throw new Error(`renewal failed: ${JSON.stringify(r.error)}`);
};
const profiles: Profile[] = [];
try {
  const first = await start();
  try {
    const started = await first.bot.start();
    if (started.status !== "healthy") throw new Error(`first join: ${JSON.stringify(started)}`);
    if (!cold) {
      for (let i = 0; i < 10; i++) await renew(first.bot); // warm-up
      profiles.push(
        await profiled(first.cdp, async () => {
          for (let i = 0; i < renewals; i++) await renew(first.bot);
        }),
      );
    }
  } finally {
    first.cdp.close();
    await first.worker.stop();
  }
  for (let i = 0; cold && i < renewals; i++) {
    const { worker, cdp, bot } = await start();
    try {
      profiles.push(await profiled(cdp, () => renew(bot)));
    } finally {
      cdp.close();
      await worker.stop();
    }
  }
} finally {
  if (persistDir) await Deno.remove(persistDir, { recursive: true });
}
await Deno.writeTextFile(out, JSON.stringify(profiles[profiles.length - 1]));
/** Samples per key over every profile (`key` names a node, null: not counted). */
function tally(key: (f: ProfileNode["callFrame"]) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const profile of profiles) {
    const hits = new Map<number, number>();
    for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
    for (const n of profile.nodes) {
      const k = key(n.callFrame);
      counts.set(k, (counts.get(k) ?? 0) + (hits.get(n.id) ?? 0));
    }
  }
  return counts;
}
const total = profiles.reduce((sum, p) => sum + p.samples.length, 0);
console.log(
  `${cold ? `first renewal after each of ${renewals} restarts` : `${renewals} renewals`}, ` +
    `${total} samples; profile: ${out}`,
);
const row = (name: string, n: number) =>
  console.log(`${String(n).padStart(6)} ${(100 * n / total).toFixed(1).padStart(5)} %  ${name}`);
const top = (counts: Map<string, number>) => {
  for (const [name, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 30)) row(name, n);
};
top(
  tally((f) => `${f.functionName || "(anonymous)"} ${f.url.replace(/.*\//, "")}:${f.lineNumber}`),
);
console.log("\nself time by source module (native calls by name):");
const modules = sourceModules(await Deno.readTextFile(script.path));
top(
  tally((f) =>
    f.url.endsWith(".js")
      ? moduleAt(modules, f.lineNumber)
      : `native ${f.functionName || "(anonymous)"}`
  ),
);
/** Samples under each of the bundle's functions, each counted once per sample (recursion). */
function inclusive(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const profile of profiles) {
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    for (const leaf of profile.samples) {
      const seen = new Set<string>();
      for (let id: number | undefined = leaf; id !== undefined; id = parent.get(id)) {
        const f = byId.get(id)!.callFrame;
        if (!f.url.endsWith(".js")) continue;
        const k = `${f.functionName || "(anonymous)"} ${f.url.replace(/.*\//, "")}:${f.lineNumber}`;
        if (!seen.has(k)) counts.set(k, (counts.get(k) ?? 0) + 1);
        seen.add(k);
      }
    }
  }
  return counts;
}
console.log("\ninclusive time of the bundle's functions:");
top(inclusive());
