/**
 * Benchmark: CPU time of a Durable Object renewal right after workerd
 * started, the case of an object evicted between two renewals (on
 * Cloudflare, an object that renews every 20 minutes is usually evicted in
 * between, and its alarm wakes it in a fresh isolate).
 *
 * Each round restarts workerd on the same persisted storage, then either
 * renews at once (`cold`: waking the object, loading its sealed state, the
 * renewal with nothing compiled yet, the first connection to the auth
 * service) and renews again (`warm`), or first wakes the object with an
 * empty RPC (`wake`: the object's constructor and state load, plus the
 * harness's first RPC through miniflare's proxy) and then renews
 * (`after_wake`), or calls an object that does nothing (`first_rpc`: the
 * harness's and the platform's share of a first call in a fresh workerd,
 * miniflare's proxy Worker and the object's creation, included in `cold` and
 * `wake`). CPU is measured from outside as in do_renewal_bench.ts;
 * workerd's own start (module evaluation included) is not counted: on
 * Cloudflare it is not part of the alarm's invocation either.
 *
 * Usage: deno run -A --unstable-kv tests/workers/do_cold_renewal_bench.ts [ROUNDS]
 *
 * @module
 */
import type { BotIdentityRpc } from "../../runtime-adapters/workers/bot_identity_rpc.ts";
import type { DurableObjectNamespace } from "../../runtime-adapters/workers/types.ts";
import { bundle, startWorker } from "./_harness.ts";
import { botWorkerOptions, provisionBot } from "./_join_fixture.ts";
import { startLoopbackAuth } from "./_loopback_auth.ts";
import { cpuNs, percentile, workerdPids } from "./do_renewal_bench.ts";

type Bot = BotIdentityRpc & { ping(): Promise<void> };
type Empty = { ping(): Promise<void> };

/** CPU milliseconds `pids` spent on `call`. */
async function cpuOf(pids: number[], call: () => Promise<unknown>): Promise<number> {
  const before = await cpuNs(pids);
  const result = await call();
  const ms = (await cpuNs(pids) - before) / 1e6;
  // Read after the measurement: each property read of an RPC result is a round trip.
  const r = result as { ok?: boolean; error?: unknown } | undefined;
  if (r && r.ok === false) throw new Error(`renewal failed: ${JSON.stringify(r.error)}`);
  return ms;
}

if (import.meta.main) {
  const rounds = Number(Deno.args[0] ?? 8);
  await using auth = await startLoopbackAuth("edge.example", {
    app: { rateLimit: { perSecond: 1e6, burst: 1e6 } },
  });
  const secret = await provisionBot(auth.api, "cold-bot");
  await using script = await bundle(new URL("./renewal_floor_worker.ts", import.meta.url));
  const persistDir = await Deno.makeTempDir({ prefix: "keybound-do-cold-" });
  // One KEK for every restart: the same sealed state is loaded each time.
  const bot = botWorkerOptions(auth.url, "cold-bot", secret, "BenchBot", { persistDir });
  const options = { ...bot, durableObjects: { ...bot.durableObjects, EMPTY: "EmptyObject" } };
  /** Starts workerd on the persisted storage: the bot and the new process's pids. */
  const start = async () => {
    const before = new Set(await workerdPids());
    const worker = await startWorker(script.path, options);
    const pids = (await workerdPids()).filter((p) => !before.has(p));
    if (pids.length === 0) throw new Error("no new workerd process found under this one");
    const ns = await worker.mf.getDurableObjectNamespace(
      "BOT_IDENTITY",
    ) as unknown as DurableObjectNamespace<Bot>;
    const empty = await worker.mf.getDurableObjectNamespace(
      "EMPTY",
    ) as unknown as DurableObjectNamespace<Empty>;
    return {
      worker,
      pids,
      bot: ns.get(ns.idFromName("cold-bot")),
      empty: empty.get(empty.idFromName("empty")),
    };
  };
  const samples: Record<"cold" | "warm" | "wake" | "after_wake" | "first_rpc", number[]> = {
    cold: [],
    warm: [],
    wake: [],
    after_wake: [],
    first_rpc: [],
  };
  try {
    {
      const first = await start();
      await using _ = first.worker;
      const started = await first.bot.start();
      if (started.status !== "healthy") throw new Error(`first join: ${JSON.stringify(started)}`);
    }
    for (let i = 0; i < rounds; i++) {
      {
        const { worker, pids, bot } = await start();
        await using _ = worker;
        samples.cold.push(await cpuOf(pids, () => bot.renew()));
        samples.warm.push(await cpuOf(pids, () => bot.renew()));
      }
      {
        const { worker, pids, bot } = await start();
        await using _ = worker;
        samples.wake.push(await cpuOf(pids, () => bot.ping()));
        samples.after_wake.push(await cpuOf(pids, () => bot.renew()));
      }
      {
        const { worker, pids, empty } = await start();
        await using _ = worker;
        samples.first_rpc.push(await cpuOf(pids, () => empty.ping()));
      }
    }
  } finally {
    await Deno.remove(persistDir, { recursive: true });
  }
  const ms = (x: number) => Number(x.toFixed(2));
  const summary = (s: number[]) => {
    const sorted = [...s].sort((a, b) => a - b);
    return { median_ms: ms(percentile(sorted, 0.5)), max_ms: ms(sorted[sorted.length - 1]) };
  };
  console.log(JSON.stringify({
    benchmark: "BotIdentity renewal right after workerd started, workerd CPU",
    rounds,
    cold: summary(samples.cold),
    warm: summary(samples.warm),
    wake: summary(samples.wake),
    after_wake: summary(samples.after_wake),
    first_rpc: summary(samples.first_rpc),
  }));
}
