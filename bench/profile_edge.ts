/**
 * CPU profile of Durable Object renewals inside workerd (dev tool, not part
 * of `deno task bench`): runs the Worker bot in miniflare with workerd's V8
 * inspector on a free loopback port, takes a sampling profile over the
 * Chrome DevTools Protocol while `renewals` renewals run against a loopback
 * auth service, and prints the functions with the most samples (self time)
 * and by source module of the bundle (npm packages by name), and the
 * profile file's path (open it in Chrome DevTools). The renewal's floor is
 * measured by `deno task bench edge` (tests/workers/renewal_floor_worker.ts).
 *
 * workerd freezes its clocks while a request runs, so the profile's sample
 * times are meaningless; the shares of the samples are what to read.
 *
 * `deno run -A --unstable-kv bench/profile_edge.ts [renewals] [out.cpuprofile]`
 *
 * @module
 */
import type { BotIdentityRpc } from "../runtime-adapters/workers/bot_identity_rpc.ts";
import type { DurableObjectNamespace } from "../runtime-adapters/workers/types.ts";
import { bundle, startWorker } from "../tests/workers/_harness.ts";
import { botWorkerOptions, provisionBot } from "../tests/workers/_join_fixture.ts";
import { startLoopbackAuth } from "../tests/workers/_loopback_auth.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

/** A CDP client over one WebSocket: `call` sends a method and resolves with its result. */
async function devtools(url: string) {
  const ws = new WebSocket(url);
  await new Promise((opened) => ws.onopen = opened);
  let next = 0;
  const pending = new Map<number, (result: unknown) => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    pending.get(m.id)?.(m.result);
    pending.delete(m.id);
  };
  return {
    call: <T>(method: string, params = {}) =>
      new Promise<T>((done) => {
        pending.set(++next, done as (result: unknown) => void);
        ws.send(JSON.stringify({ id: next, method, params }));
      }),
    close: () => ws.close(),
  };
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

const renewals = Number(Deno.args[0] ?? 150);
const out = Deno.args[1] ?? (await Deno.makeTempFile({ suffix: ".cpuprofile" }));
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
// The bot reaches the auth service through its AUTH binding, as in `deno task
// bench edge`: a global fetch would go through miniflare's outbound
// interceptor, a JavaScript Worker a deployed Worker never runs, and its CPU
// would be profiled as the renewal's.
await using worker = await startWorker(
  script.path,
  botWorkerOptions(auth.url, "profile-bot", secret, "BotIdentity", { inspectorPort }),
);
const ns = await worker.mf.getDurableObjectNamespace(
  "BOT_IDENTITY",
) as unknown as DurableObjectNamespace<BotIdentityRpc>;
const bot = ns.get(ns.idFromName("profile-bot"));
const started = await bot.start();
if (started.status !== "healthy") throw new Error(`first join: ${JSON.stringify(started)}`);
for (let i = 0; i < 10; i++) await bot.renew(); // warm-up
const [target] = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
const cdp = await devtools(target.webSocketDebuggerUrl);
await cdp.call("Profiler.enable");
await cdp.call("Profiler.setSamplingInterval", { interval: 100 });
await cdp.call("Profiler.start");
for (let i = 0; i < renewals; i++) {
  const r = await bot.renew();
  if (!r.ok) throw new Error(`renewal failed: ${JSON.stringify(r.error)}`);
}
const { profile } = await cdp.call<{ profile: { nodes: ProfileNode[]; samples: number[] } }>(
  "Profiler.stop",
);
cdp.close();
await Deno.writeTextFile(out, JSON.stringify(profile));
const hits = new Map<number, number>();
for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
const self = new Map<string, number>();
for (const n of profile.nodes) {
  const f = n.callFrame;
  const name = `${f.functionName || "(anonymous)"} ${f.url.replace(/.*\//, "")}:${f.lineNumber}`;
  self.set(name, (self.get(name) ?? 0) + (hits.get(n.id) ?? 0));
}
const total = profile.samples.length;
console.log(`${renewals} renewals, ${total} samples; profile: ${out}`);
const row = (name: string, n: number) =>
  console.log(`${String(n).padStart(6)} ${(100 * n / total).toFixed(1).padStart(5)} %  ${name}`);
for (const [name, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) row(name, n);
console.log("\nself time by source module (native calls by name):");
const modules = sourceModules(await Deno.readTextFile(script.path));
const byModule = new Map<string, number>();
for (const n of profile.nodes) {
  const f = n.callFrame;
  const key = f.url.endsWith(".js")
    ? moduleAt(modules, f.lineNumber)
    : `native ${f.functionName || "(anonymous)"}`;
  byModule.set(key, (byModule.get(key) ?? 0) + (hits.get(n.id) ?? 0));
}
for (const [name, n] of [...byModule].sort((a, b) => b[1] - a[1]).slice(0, 30)) row(name, n);
