/**
 * CPU profile of the auth process under refresh joins (dev tool, not part of
 * `deno task bench`): starts `auth start` with V8's sampling profiler
 * (`--v8-flags=--prof`, log written to `outDir`), onboards `bots` bots and
 * runs `joins` refreshes with one in flight per bot. Process the log with
 * `node --prof-process <outDir>/isolate-*.log`.
 *
 * `deno run -A --unstable-kv bench/profile_auth.ts <outDir> [joins] [bots]`
 *
 * @module
 */
import {
  BENCH_CERTIFICATE_KEY,
  cpuSeconds,
  measureRefreshJoins,
  onboardBots,
  refresh,
  startAuth,
} from "./join.ts";
import { byThreadName, printThreads, threadCpu } from "./join_threads.ts";
import { fmt } from "./stats.ts";

const outDir = Deno.args[0];
if (!outDir) throw new Error("usage: profile_auth.ts <outDir> [joins] [bots]");
const joins = Number(Deno.args[1] ?? 2000);
const botCount = Number(Deno.args[2] ?? 50);
await Deno.mkdir(outDir, { recursive: true });
const dataDir = await Deno.makeTempDir({ prefix: "keybound-profile-" });
const auth = await startAuth(
  dataDir,
  Deno.env.get("NO_PROF") ? {} : { denoFlags: ["--v8-flags=--prof"], cwd: outDir },
);
try {
  const bots = await onboardBots(auth, botCount, BENCH_CERTIFICATE_KEY);
  for (const bot of bots) await refresh(auth, bot);
  const cpu0 = await cpuSeconds(auth.pid);
  const [threads0, client0] = await Promise.all([threadCpu(auth.pid), threadCpu("self")]);
  const m = await measureRefreshJoins(auth, bots, joins);
  const [threads1, client1] = await Promise.all([threadCpu(auth.pid), threadCpu("self")]);
  const cpu1 = await cpuSeconds(auth.pid);
  printThreads([
    ["auth", byThreadName(threads0, threads1)],
    ["client", byThreadName(client0, client1)],
  ], joins);
  console.log(
    `${joins} refreshes from ${botCount} bots: ${fmt(m.rate, 1)} joins/s, p50 ${
      fmt(m.p50, 2)
    } ms, auth CPU ${fmt(m.serverCpuMs ?? NaN, 2)} ms/join (${fmt((cpu1! - cpu0!) * 1000, 0)} ms)`,
  );
} finally {
  await auth.stop();
  await Deno.remove(dataDir, { recursive: true });
}
