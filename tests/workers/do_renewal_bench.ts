/**
 * Benchmark: CPU time of one BotIdentity renewal in workerd (a refresh join
 * plus persisting the new state, sealed), median of many; and, in the same
 * object and run, the floor of that renewal (tests/workers/renewal_floor_worker.ts:
 * its cryptography, its storage writes and its two round trips, without the
 * protocol logic), so the gap between the two is what code could still take.
 *
 * workerd freezes its clocks during execution, so the time is measured from
 * outside: the CPU time of every workerd thread (`/proc/<pid>/task/<tid>/schedstat`,
 * nanoseconds) before and after each renewal. The auth service runs in this
 * Deno process, so its work is not counted. Linux only.
 *
 * Usage: deno run -A tests/workers/do_renewal_bench.ts [RENEWALS]
 *
 * @module
 */
import type { BotIdentityRpc } from "../../runtime-adapters/workers/bot_identity_rpc.ts";
import type { BenchBot } from "./renewal_floor_worker.ts";
import type { DurableObjectNamespace } from "../../runtime-adapters/workers/types.ts";
import { bundle, startWorker } from "./_harness.ts";
import { botWorkerOptions, provisionBot } from "./_join_fixture.ts";
import { startLoopbackAuth } from "./_loopback_auth.ts";

/** Target (issue #13): net median CPU per renewal. */
export const TARGET_MS = 3;

/** Every workerd process that is a descendant of this one. */
export async function workerdPids(): Promise<number[]> {
  const children = new Map<number, number[]>();
  const names = new Map<number, string>();
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${e.name}/stat`);
      const close = stat.lastIndexOf(")");
      const ppid = Number(stat.slice(close + 2).split(" ")[1]);
      names.set(Number(e.name), stat.slice(stat.indexOf("(") + 1, close));
      children.set(ppid, [...(children.get(ppid) ?? []), Number(e.name)]);
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      if (names.get(c)?.startsWith("workerd")) out.push(c);
      walk(c);
    }
  };
  walk(Deno.pid);
  return out;
}

/** CPU nanoseconds used so far by all threads of `pids`. */
export async function cpuNs(pids: number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) {
    for await (const t of Deno.readDir(`/proc/${pid}/task`)) {
      try {
        total += Number(
          (await Deno.readTextFile(`/proc/${pid}/task/${t.name}/schedstat`)).split(" ")[0],
        );
      } catch {
        // The thread ended while we looked.
      }
    }
  }
  return total;
}

/** The `p` quantile (0–1) of ascending `sorted`. */
export const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

/** The bench's bot with its floor methods, as its RPC stub types it. */
export type BenchBotStub = BotIdentityRpc & Omit<BenchBot, keyof BotIdentityRpc>;

/** A running bench: the bot (joined once), the floor's echo URL, the workerd processes. */
export interface FloorBench extends AsyncDisposable {
  /** The bench bot (`BenchBot` in tests/workers/renewal_floor_worker.ts). */
  bot: BenchBotStub;
  /** Where the floor's round trips go (`bot.floor(echoUrl)`). */
  echoUrl: string;
  /** The workerd processes running the bot. */
  pids: number[];
}

/**
 * Starts what the bench measures: a loopback auth service (its limiter
 * lifted), an echo for the floor's round trips, and the bench bot in
 * workerd, joined once. `bench/profile_edge.ts --native` profiles the same.
 */
export async function startFloorBench(token = "bench-bot"): Promise<FloorBench> {
  await using stack = new AsyncDisposableStack();
  // The limiter is not what is measured: a long run must not turn renewals into retries.
  const auth = stack.use(
    await startLoopbackAuth("edge.example", {
      app: { rateLimit: { perSecond: 1e6, burst: 1e6 } },
    }),
  );
  const secret = await provisionBot(auth.api, token);
  const script = stack.use(await bundle(new URL("./renewal_floor_worker.ts", import.meta.url)));
  // The floor's round trips go to this echo: answers of `?n=` bytes of JSON.
  const echo = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const n = Number(new URL(req.url).searchParams.get("n") ?? 2);
    return req.arrayBuffer().then(() =>
      new Response(JSON.stringify({ p: "x".repeat(Math.max(0, n - 8)) }), {
        headers: { "content-type": "application/json" },
      })
    );
  });
  stack.defer(() => echo.shutdown());
  const echoUrl = `http://127.0.0.1:${echo.addr.port}/`;
  // The floor reaches the echo through ECHO, as the bot reaches the auth
  // service through AUTH, with workerd's own HTTP client: miniflare routes
  // every global fetch through a JavaScript Worker of its own (its outbound
  // interceptor), CPU a deployed Worker never spends. The bench's
  // `fetch_global_net_median_ms` measures that path.
  const before = new Set(await workerdPids());
  const worker = stack.use(
    await startWorker(
      script.path,
      botWorkerOptions(auth.url, token, secret, "BenchBot", {
        externalServices: { ECHO: `127.0.0.1:${echo.addr.port}` },
      }),
    ),
  );
  const pids = (await workerdPids()).filter((p) => !before.has(p));
  if (pids.length === 0) throw new Error("no workerd process found under this one");
  const ns = await worker.mf.getDurableObjectNamespace(
    "BOT_IDENTITY",
  ) as unknown as DurableObjectNamespace<BenchBotStub>;
  const bot = ns.get(ns.idFromName(token));
  const started = await bot.start();
  if (started.status !== "healthy") {
    throw new Error(`first join failed: ${JSON.stringify(started)}`);
  }
  const resources = stack.move();
  return { bot, echoUrl, pids, [Symbol.asyncDispose]: () => resources.disposeAsync() };
}

if (import.meta.main) {
  const renewals = Number(Deno.args[0] ?? 60);
  await using bench = await startFloorBench();
  const { bot, echoUrl, pids } = bench;
  for (let i = 0; i < 5; i++) { // warm-up: JIT, connections
    await bot.renew();
    await bot.floor(echoUrl);
  }
  // One round is one call of each kind; rounds repeat, so a change of load
  // on the machine falls on every kind alike.
  const kinds: Record<string, () => Promise<unknown>> = {
    renewal: () => bot.renew(),
    // The same RPC path with no work: the harness's share (miniflare's proxy, RPC).
    baseline: () => bot.ping(),
    readiness: () => bot.readiness(),
    floor: () => bot.floor(echoUrl),
    crypto: () => bot.floorCrypto(),
    storage: () => bot.floorStorage(),
    fetch: () => bot.floorFetch(echoUrl),
    fetchGlobal: () => bot.floorFetchGlobal(echoUrl),
  };
  const cpu: Record<string, number[]> = Object.fromEntries(
    Object.keys(kinds).map((k) => [k, []]),
  );
  for (let i = 0; i < renewals; i++) {
    for (const [kind, call] of Object.entries(kinds)) {
      const before = await cpuNs(pids);
      const result = await call();
      cpu[kind].push((await cpuNs(pids) - before) / 1e6);
      // Read after the measurement: each property read of an RPC result is
      // another round trip through miniflare's proxy (~0.3 ms of workerd CPU).
      const r = result as Awaited<ReturnType<typeof bot.renew>>;
      if (kind === "renewal" && !r.ok) {
        throw new Error(`renewal failed: ${JSON.stringify(r.error)}`);
      }
    }
  }
  for (const samples of Object.values(cpu)) samples.sort((a, b) => a - b);
  const renewalsCpu = cpu.renewal;
  const baselineCpu = cpu.baseline;
  const median = percentile(renewalsCpu, 0.5);
  const baseline = percentile(baselineCpu, 0.5);
  const net = median - baseline;
  const ms = (x: number) => Number(x.toFixed(2));
  const netOf = (samples: number[]) => ms(percentile(samples, 0.5) - baseline);
  console.log(JSON.stringify({
    benchmark: "BotIdentity renewal (refresh join + sealed persist), workerd CPU per renewal",
    renewals,
    median_ms: ms(median),
    p10_ms: ms(percentile(renewalsCpu, 0.1)),
    p90_ms: ms(percentile(renewalsCpu, 0.9)),
    rpc_baseline_median_ms: ms(percentile(baselineCpu, 0.5)),
    // The baseline before session 5, for comparison with older figures.
    readiness_median_ms: ms(percentile(cpu.readiness, 0.5)),
    net_median_ms: ms(net),
    floor_net_median_ms: netOf(cpu.floor),
    floor_parts_net_median_ms: {
      crypto: netOf(cpu.crypto),
      storage: netOf(cpu.storage),
      fetch: netOf(cpu.fetch),
    },
    // The floor's two round trips through the global fetch instead of a binding.
    fetch_global_net_median_ms: netOf(cpu.fetchGlobal),
    target_ms: TARGET_MS,
    meets_target: net <= TARGET_MS,
  }));
}
