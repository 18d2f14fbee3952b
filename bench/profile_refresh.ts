/**
 * In-process profile of one refresh join (dev tool, not part of
 * `deno task bench`): server and client in this process over loopback HTTP
 * with a Deno KV file; prints the median time of `begin` and `continue` as
 * the client sees them and the backend calls the server makes per refresh.
 *
 * `deno run -A --unstable-kv bench/profile_refresh.ts [joins]`
 *
 * @module
 */
import { onboardedBot, putBot, startHarness } from "../tests/server/_join_fixture.ts";
import { fmt, median } from "./stats.ts";

const joins = Number(Deno.args[0] ?? 200);
const h = await startHarness();
try {
  await putBot(h.ctx, "b1");
  const bot = await onboardedBot(h, "t1", { botName: "b1" });
  const backend = h.ctx.backend as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const calls = new Map<string, number[]>();
  for (const name of ["get", "list", "commit"]) {
    const original = backend[name].bind(backend);
    backend[name] = async (...args: unknown[]) => {
      const t0 = performance.now();
      try {
        return await original(...args);
      } finally {
        const list = calls.get(name) ?? [];
        list.push(performance.now() - t0);
        calls.set(name, list);
      }
    };
  }
  const requests = new Map<string, number[]>();
  const timed: typeof fetch = async (input, init) => {
    const t0 = performance.now();
    const res = await fetch(input, init);
    const body = await res.arrayBuffer();
    const path = new URL(String(input)).pathname.split("/").pop()!;
    const list = requests.get(path) ?? [];
    list.push(performance.now() - t0);
    requests.set(path, list);
    return new Response(body, { status: res.status, headers: res.headers });
  };
  for (let i = 0; i < 20; i++) await bot.join({ fetch: timed }); // warm-up
  requests.clear();
  calls.clear();
  const totals: number[] = [];
  for (let i = 0; i < joins; i++) {
    const t0 = performance.now();
    await bot.join({ fetch: timed });
    totals.push(performance.now() - t0);
  }
  console.log(`refresh (client view, incl. client crypto): p50 ${fmt(median(totals), 2)} ms`);
  for (const [path, list] of requests) {
    console.log(`  ${path}: p50 ${fmt(median(list), 2)} ms (${list.length / joins} per join)`);
  }
  for (const [name, list] of calls) {
    console.log(
      `  backend.${name}: ${fmt(list.length / joins, 1)} per join, p50 ${fmt(median(list), 3)} ms`,
    );
  }
} finally {
  await h.close();
}
