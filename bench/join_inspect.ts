/**
 * CPU or allocation profile of the auth process under refresh joins of one
 * bot (dev tool, not part of `deno task bench`), through V8's inspector:
 * unlike `--prof` (bench/profile_auth.ts), it names the JavaScript of every
 * sample, dependencies included, and V8's own work as `(garbage collector)`,
 * `(program)` and the native functions WebCrypto and Deno KV calls run.
 *
 * - `cpu`: sampling profiler at 100 µs; prints self time per refresh by
 *   module (zod, jose, hono, `ext:` for Deno's own JavaScript, each file of
 *   ours) and by function, and inclusive time per function (its callees' in
 *   the same synchronous stack: what follows an await is not counted). The
 *   profiler's own cost inflates every figure.
 * - `heap`: sampling heap profiler (every 512 bytes, objects collected since
 *   included); prints bytes allocated per refresh by function, self and
 *   inclusive of callees (ours and dependencies').
 *
 * `deno run -A --unstable-kv bench/join_inspect.ts cpu|heap [refreshes] [auth entry | floor]`
 * (`auth entry`: another checkout's `runtime-adapters/deno/entry/auth.ts`, to compare;
 * `floor`: profile the protocol floor's server instead, `bench/join_transport_server.ts`
 * replaying a refresh captured from this checkout's auth service, so the two
 * profiles can be set side by side).
 *
 * @module
 */
import { BENCH_CERTIFICATE_KEY, onboardBots, refresh, startAuth } from "./join.ts";
import { devtools } from "./join_devtools.ts";
import { type CapturedExchange, capturingFetch, startFloorServer } from "./join_transport.ts";
import { fmt } from "./stats.ts";

const mode = Deno.args[0];
if (mode !== "cpu" && mode !== "heap") {
  throw new Error("usage: join_inspect.ts cpu|heap [refreshes] [auth entry]");
}
const joins = Number(Deno.args[1] ?? 1000);
const floor = Deno.args[2] === "floor";
const entry = floor ? undefined : Deno.args[2];

/** A V8 call frame as the inspector reports it. */
interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

/** `name file:line` of a frame (the file's last two path segments). */
function frameName(f: CallFrame): string {
  return `${f.functionName || "(anonymous)"} ${
    f.url.split("/").slice(-2).join("/")
  }:${f.lineNumber}`;
}

/**
 * The module a frame belongs to: a dependency's name, `ext:…`, a file of
 * ours, V8's `(idle)`, `(program)` or `(garbage collector)`, or `(native)`
 * for the functions behind WebCrypto, Deno KV and other ops.
 */
function moduleOf(f: CallFrame): string {
  const url = f.url;
  for (const dep of ["zod", "jose", "hono"]) if (url.includes(`/${dep}/`)) return dep;
  if (url.startsWith("ext:")) return url.split("/")[0];
  const ours = /\/((?:src|runtime-adapters)\/.*)$/.exec(url);
  if (ours) return ours[1];
  if (url) return url;
  return f.functionName.startsWith("(") ? f.functionName : "(native)";
}

/** Prints the `rows` largest entries of `m`, each divided by `joins`, with `unit`. */
function show(title: string, m: Map<string, number>, rows: number, scale: number, unit: string) {
  console.log(title);
  for (const [what, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, rows)) {
    console.log(`  ${fmt(v / joins / scale, 3).padStart(8)} ${unit}  ${what}`);
  }
}

/** A sampling CPU profile as the inspector returns it. */
interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

/** A node of a sampling heap profile. */
interface HeapNode {
  callFrame: CallFrame;
  selfSize: number;
  children: HeapNode[];
}

/** Rows printed per table: `n`, or the environment's `TOP` (say, 1000 for every row). */
const top = (n: number) => Number(Deno.env.get("TOP") ?? n);

const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

/** The inspector of the auth process listening on `port`. */
async function inspector(port: number) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  return devtools(targets[0].webSocketDebuggerUrl);
}

const dir = await Deno.makeTempDir({ prefix: "keybound-join-inspect-" });
// A port of its own, so two runs (or another inspector) do not meet.
const port = 9300 + Math.floor(Math.random() * 600);
const inspect = [`--inspect=127.0.0.1:${port}`];
const auth = await startAuth(`${dir}/auth`, {
  denoFlags: floor ? [] : inspect,
  ...(entry ? { entry } : {}),
});
const stops = [() => auth.stop()];
try {
  const [bot] = await onboardBots(auth, 1, BENCH_CERTIFICATE_KEY);
  for (let i = 0; i < 200; i++) await refresh(auth, bot);
  /** One refresh of the profiled process. */
  let run = () => refresh(auth, bot);
  if (floor) {
    const exchanges: CapturedExchange[] = [];
    await refresh(auth, bot, capturingFetch(exchanges));
    const server = await startFloorServer(exchanges, dir, true, fetch, inspect);
    stops.unshift(() => server.stop());
    run = () => server.refresh(0);
    for (let i = 0; i < 150; i++) await run();
  }
  const v8 = await inspector(port);
  if (mode === "cpu") {
    await v8.call("Profiler.enable");
    await v8.call("Profiler.setSamplingInterval", { interval: 100 });
    await v8.call("Profiler.start");
    for (let i = 0; i < joins; i++) await run();
    const { profile } = await v8.call<{ profile: CpuProfile }>("Profiler.stop");
    const frames = new Map<number, CallFrame>();
    for (const node of profile.nodes) frames.set(node.id, node.callFrame);
    const byModule = new Map<string, number>();
    const byFunction = new Map<string, number>();
    profile.samples.forEach((node, i) => {
      const us = profile.timeDeltas[i] ?? 0;
      const f = frames.get(node)!;
      add(byModule, moduleOf(f), us);
      add(byFunction, frameName(f), us);
    });
    // Inclusive time of each function of ours or of a dependency: its samples
    // and its callees' (within one synchronous stack: an await starts anew).
    const selfOf = new Map<number, number>();
    profile.samples.forEach((node, i) =>
      selfOf.set(node, (selfOf.get(node) ?? 0) + (profile.timeDeltas[i] ?? 0))
    );
    const children = new Map(profile.nodes.map((n) => [n.id, n.children ?? []]));
    const inclusive = new Map<string, number>();
    const walk = (id: number, callers: Set<string>): number => {
      const f = frames.get(id)!;
      const mine = new Set(callers);
      const named = f.url && !f.url.startsWith("ext:") ? frameName(f) : null;
      if (named) mine.add(named);
      let total = selfOf.get(id) ?? 0;
      for (const c of children.get(id)!) total += walk(c, mine);
      if (named && !callers.has(named)) add(inclusive, named, total);
      return total;
    };
    walk(profile.nodes[0].id, new Set());
    show(`${joins} refreshes; CPU self time per refresh by module:`, byModule, top(30), 1000, "ms");
    show("by function:", byFunction, top(40), 1000, "ms");
    show("inclusive (our code and dependencies):", inclusive, top(60), 1000, "ms");
  } else {
    await v8.call("HeapProfiler.enable");
    await v8.call("HeapProfiler.startSampling", {
      samplingInterval: 512,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    for (let i = 0; i < joins; i++) await run();
    const { profile } = await v8.call<{ profile: { head: HeapNode } }>("HeapProfiler.stopSampling");
    const self = new Map<string, number>();
    const inclusive = new Map<string, number>();
    let total = 0;
    const walk = (node: HeapNode, stack: Set<string>) => {
      const name = frameName(node.callFrame);
      total += node.selfSize;
      add(self, name, node.selfSize);
      const callers = new Set(stack);
      if (node.callFrame.url && !node.callFrame.url.startsWith("ext:")) callers.add(name);
      for (const caller of callers) add(inclusive, caller, node.selfSize);
      for (const child of node.children) walk(child, callers);
    };
    walk(profile.head, new Set());
    console.log(`${joins} refreshes; ${fmt(total / joins / 1024, 1)} KB allocated per refresh`);
    show("self:", self, top(35), 1024, "KB");
    show("inclusive (our code and dependencies):", inclusive, top(60), 1024, "KB");
  }
  v8.close();
} finally {
  for (const stop of stops) await stop();
  await Deno.remove(dir, { recursive: true });
}
