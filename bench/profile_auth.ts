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

/**
 * CPU ms (user, system) of each thread of `pid`, ms it waited, runnable, for
 * a CPU (`schedstat` run delay: contention from other processes and from its
 * own threads) and times it was put on a CPU, keyed by `tid name`.
 */
async function threadCpu(pid: number | "self"): Promise<Map<string, Stats>> {
  const out = new Map<string, Stats>();
  for await (const t of Deno.readDir(`/proc/${pid}/task`)) {
    try {
      const dir = `/proc/${pid}/task/${t.name}`;
      const stat = await Deno.readTextFile(`${dir}/stat`);
      const sched = (await Deno.readTextFile(`${dir}/schedstat`)).split(" ");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(`${t.name} ${name}`, [
        Number(f[11]) * 10,
        Number(f[12]) * 10,
        Number(sched[1]) / 1e6,
        Number(sched[2]),
      ]);
    } catch {
      // the thread ended
    }
  }
  return out;
}

/** A thread's user ms, system ms, ms waited for a CPU, times put on a CPU. */
type Stats = [number, number, number, number];

/** Per thread name: its {@linkcode Stats} summed over `after - before`, and how many threads. */
function byThreadName(
  before: Map<string, Stats>,
  after: Map<string, Stats>,
): Map<string, [...Stats, number]> {
  const out = new Map<string, [...Stats, number]>();
  for (const [id, now] of after) {
    const then = before.get(id) ?? [0, 0, 0, 0];
    const name = id.slice(id.indexOf(" ") + 1);
    const acc = out.get(name) ?? [0, 0, 0, 0, 0];
    out.set(name, [...now.map((v, i) => acc[i] + v - then[i]) as Stats, acc[4] + 1]);
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
  const [threads0, client0] = await Promise.all([threadCpu(auth.pid), threadCpu("self")]);
  const m = await measureRefreshJoins(auth, bots, joins);
  const [threads1, client1] = await Promise.all([threadCpu(auth.pid), threadCpu("self")]);
  const cpu1 = await cpuSeconds(auth.pid);
  // Per thread name: where each process's CPU goes (main = JS and HTTP,
  // tokio blocking threads = WebCrypto, the KV thread = SQLite), and how long
  // its threads sat runnable without a CPU.
  for (
    const [side, threads] of [
      ["auth", byThreadName(threads0, threads1)],
      ["client", byThreadName(client0, client1)],
    ] as const
  ) {
    for (
      const [name, [u, s, w, runs, n]] of [...threads].sort((a, b) =>
        b[1][0] + b[1][1] - a[1][0] - a[1][1]
      )
    ) {
      if (u + s + w < joins * 0.005) continue;
      console.log(
        `  ${side.padEnd(6)} ${name.padEnd(20)} x${n}: user ${fmt(u / joins, 2)} + sys ${
          fmt(s / joins, 2)
        } ms/join, waited for a CPU ${fmt(w / joins, 2)} ms/join, on a CPU ${
          fmt(runs / joins, 1)
        } times/join`,
      );
    }
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
