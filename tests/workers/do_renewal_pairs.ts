/**
 * Dev tool: the renewal CPU of two source trees, paired. Each tree's bench
 * Worker (`tests/workers/renewal_floor_worker.ts` in that tree) runs in its
 * own workerd beside the other, and every round renews once in each, in
 * alternating order, with an empty RPC after each renewal; so load changes
 * on a shared machine fall on both alike. It prints each side's net median
 * (renewal minus its empty RPC) and the median and mean of the paired
 * differences B − A, which resolve changes of ~0.1 ms where whole-bench runs
 * differ by ±0.3 ms from one to the next. Run it on A/A first: the second
 * workerd has measured 1–5 % cheaper.
 *
 * A tree is a checkout of this repository (`git worktree add`, or
 * `git archive REV | tar -x -C DIR`); the auth service and harness are this
 * tree's.
 *
 * `deno run -A --unstable-kv tests/workers/do_renewal_pairs.ts TREE_A TREE_B [ROUNDS]`
 *
 * @module
 */
import { bundleWorker } from "../../runtime-adapters/workers/build.ts";
import type { BotIdentityRpc } from "../../runtime-adapters/workers/bot_identity_rpc.ts";
import type { DurableObjectNamespace } from "../../runtime-adapters/workers/types.ts";
import { cpuNs, percentile, workerdPids } from "./do_renewal_bench.ts";
import { startWorker } from "./_harness.ts";
import { botWorkerOptions, provisionBot } from "./_join_fixture.ts";
import { startLoopbackAuth } from "./_loopback_auth.ts";

type Bot = BotIdentityRpc & { ping(): Promise<void> };

if (import.meta.main) {
  const [treeA, treeB] = Deno.args;
  if (!treeA || !treeB) throw new Error("usage: do_renewal_pairs.ts TREE_A TREE_B [ROUNDS]");
  const rounds = Number(Deno.args[2] ?? 150);
  await using auth = await startLoopbackAuth("edge.example", {
    app: { rateLimit: { perSecond: 1e6, burst: 1e6 } },
  });
  await using stack = new AsyncDisposableStack();
  const sides: { bot: Bot; pids: number[] }[] = [];
  for (const [i, tree] of [treeA, treeB].entries()) {
    const token = `pair-bot-${i}`;
    const secret = await provisionBot(auth.api, token);
    const script = stack.use(
      await bundleWorker(`${tree}/tests/workers/renewal_floor_worker.ts`),
    );
    const before = new Set(await workerdPids());
    const worker = stack.use(
      await startWorker(script.path, botWorkerOptions(auth.url, token, secret)),
    );
    const pids = (await workerdPids()).filter((p) => !before.has(p));
    const ns = await worker.mf.getDurableObjectNamespace(
      "BOT_IDENTITY",
    ) as unknown as DurableObjectNamespace<Bot>;
    const bot = ns.get(ns.idFromName(token));
    const started = await bot.start();
    if (started.status !== "healthy") throw new Error(`first join: ${JSON.stringify(started)}`);
    sides.push({ bot, pids });
  }
  for (let i = 0; i < 5; i++) { // warm-up: JIT, connections
    for (const s of sides) {
      await s.bot.renew();
      await s.bot.ping();
    }
  }
  const renewal = [[], []] as number[][];
  const empty = [[], []] as number[][];
  for (let i = 0; i < rounds; i++) {
    for (const k of i % 2 ? [0, 1] : [1, 0]) {
      const { bot, pids } = sides[k];
      let before = await cpuNs(pids);
      const r = await bot.renew();
      renewal[k].push((await cpuNs(pids) - before) / 1e6);
      // Read after the measurement: a property read is a round trip through miniflare's proxy.
      if (!r.ok) throw new Error(`renewal failed: ${JSON.stringify(r.error)}`);
      before = await cpuNs(pids);
      await bot.ping();
      empty[k].push((await cpuNs(pids) - before) / 1e6);
    }
  }
  const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 0.5);
  const ms = (x: number) => Number(x.toFixed(3));
  const diffs = renewal[1].map((b, i) => b - renewal[0][i]);
  console.log(JSON.stringify({
    rounds,
    load: Deno.loadavg()[0],
    a_net_median_ms: ms(median(renewal[0]) - median(empty[0])),
    b_net_median_ms: ms(median(renewal[1]) - median(empty[1])),
    a_p90_ms: ms(percentile([...renewal[0]].sort((a, b) => a - b), 0.9)),
    b_p90_ms: ms(percentile([...renewal[1]].sort((a, b) => a - b), 0.9)),
    paired_diff_median_ms: ms(median(diffs)),
    paired_diff_mean_ms: ms(diffs.reduce((a, b) => a + b, 0) / diffs.length),
    empty_rpc_diff_median_ms: ms(median(empty[1].map((b, i) => b - empty[0][i]))),
  }));
}
