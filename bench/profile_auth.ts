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
import { fmt } from "./stats.ts";

/** CPU ms (user, system) of each thread of `pid`, keyed by `tid name`. */
async function threadCpu(pid: number): Promise<Map<string, [number, number]>> {
  const out = new Map<string, [number, number]>();
  for await (const t of Deno.readDir(`/proc/${pid}/task`)) {
    try {
      const stat = await Deno.readTextFile(`/proc/${pid}/task/${t.name}/stat`);
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(`${t.name} ${name}`, [Number(f[11]) * 10, Number(f[12]) * 10]);
    } catch {
      // the thread ended
    }
  }
  return out;
}

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
  const threads0 = await threadCpu(auth.pid);
  const m = await measureRefreshJoins(auth, bots, joins);
  const threads1 = await threadCpu(auth.pid);
  const cpu1 = await cpuSeconds(auth.pid);
  // Per thread name: where the auth process's CPU goes (main = JS and HTTP,
  // tokio blocking threads = WebCrypto, the KV thread = SQLite).
  const byName = new Map<string, [number, number, number]>();
  for (const [id, [u1, s1]] of threads1) {
    const [u0, s0] = threads0.get(id) ?? [0, 0];
    const name = id.slice(id.indexOf(" ") + 1);
    const acc = byName.get(name) ?? [0, 0, 0];
    byName.set(name, [acc[0] + u1 - u0, acc[1] + s1 - s0, acc[2] + 1]);
  }
  for (
    const [name, [u, s, n]] of [...byName].sort((a, b) => b[1][0] + b[1][1] - a[1][0] - a[1][1])
  ) {
    if (u + s === 0) continue;
    console.log(
      `  ${name.padEnd(20)} x${n}: user ${fmt(u / joins, 2)} + sys ${fmt(s / joins, 2)} ms/join`,
    );
  }
  console.log(
    `${joins} refreshes from ${botCount} bots: ${fmt(m.rate, 1)} joins/s, p50 ${
      fmt(m.p50, 2)
    } ms, auth CPU ${fmt(m.serverCpuMs ?? NaN, 2)} ms/join (${fmt((cpu1! - cpu0!) * 1000, 0)} ms)`,
  );
} finally {
  await auth.stop();
  await Deno.remove(dataDir, { recursive: true });
}
