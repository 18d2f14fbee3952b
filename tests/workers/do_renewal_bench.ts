/**
 * Benchmark: CPU time of one BotIdentity renewal in workerd (a refresh join
 * plus persisting the new state, sealed), median of many.
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
import { toHex } from "../../src/util/encoding.ts";
import type { BotIdentityRpc } from "../../runtime-adapters/workers/bot_identity_rpc.ts";
import type { DurableObjectNamespace } from "../../runtime-adapters/workers/types.ts";
import { bundle, startWorker } from "./_harness.ts";
import { provisionBot } from "./_join_fixture.ts";
import { startLoopbackAuth } from "./_loopback_auth.ts";

/** Target (issue #13): net median CPU per renewal. */
export const TARGET_MS = 3;

/** Every workerd process that is a descendant of this one. */
async function workerdPids(): Promise<number[]> {
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
async function cpuNs(pids: number[]): Promise<number> {
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

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

if (import.meta.main) {
  const renewals = Number(Deno.args[0] ?? 60);
  await using auth = await startLoopbackAuth();
  const secret = await provisionBot(auth.api, "bench-bot");
  await using script = await bundle(
    new URL("../../runtime-adapters/workers/bot_worker.ts", import.meta.url),
  );
  await using worker = await startWorker(script.path, {
    durableObjects: { BOT_IDENTITY: "BotIdentity" },
    bindings: {
      AUTH_SERVER: auth.url,
      TBOT_TOKEN: "bench-bot",
      TBOT_REGISTRATION_SECRET: secret,
      TBOT_STORAGE_KEK: toHex(crypto.getRandomValues(new Uint8Array(32))),
    },
  });
  const ns = await worker.mf.getDurableObjectNamespace(
    "BOT_IDENTITY",
  ) as unknown as DurableObjectNamespace<BotIdentityRpc>;
  const bot = ns.get(ns.idFromName("bench-bot"));
  const started = await bot.start();
  if (started.status !== "healthy") {
    throw new Error(`first join failed: ${JSON.stringify(started)}`);
  }
  const pids = await workerdPids();
  if (pids.length === 0) throw new Error("no workerd process found under this one");
  for (let i = 0; i < 5; i++) await bot.renew(); // warm-up: JIT, connections
  const measure = async (call: () => Promise<unknown>): Promise<number[]> => {
    const samples: number[] = [];
    for (let i = 0; i < renewals; i++) {
      const before = await cpuNs(pids);
      await call();
      samples.push((await cpuNs(pids) - before) / 1e6);
    }
    return samples.sort((a, b) => a - b);
  };
  const renewalsCpu = await measure(async () => {
    const r = await bot.renew();
    if (!r.ok) throw new Error(`renewal failed: ${JSON.stringify(r.error)}`);
  });
  // The same RPC path with no work: the harness's share (miniflare's proxy, RPC).
  const baselineCpu = await measure(() => bot.readiness());
  const median = percentile(renewalsCpu, 0.5);
  const net = median - percentile(baselineCpu, 0.5);
  const ms = (x: number) => Number(x.toFixed(2));
  console.log(JSON.stringify({
    benchmark: "BotIdentity renewal (refresh join + sealed persist), workerd CPU per renewal",
    renewals,
    median_ms: ms(median),
    p10_ms: ms(percentile(renewalsCpu, 0.1)),
    p90_ms: ms(percentile(renewalsCpu, 0.9)),
    rpc_baseline_median_ms: ms(percentile(baselineCpu, 0.5)),
    net_median_ms: ms(net),
    target_ms: TARGET_MS,
    meets_target: net <= TARGET_MS,
  }));
}
