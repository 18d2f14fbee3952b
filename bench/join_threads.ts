/**
 * Per-thread CPU of a process from procfs, for the join's dev tools
 * (`bench/profile_auth.ts`, `bench/join_vs_floor.ts`): where each process's
 * CPU goes (main = JS and HTTP, tokio blocking threads = WebCrypto, the KV
 * thread = SQLite, V8 helpers = GC and compiler), and how long its threads
 * sat runnable without a CPU.
 *
 * @module
 */
import { fmt } from "./stats.ts";

/**
 * CPU ms (user, system) of each thread of `pid`, ms it waited, runnable, for
 * a CPU (`schedstat` run delay: contention from other processes and from its
 * own threads) and times it was put on a CPU, keyed by `tid name`.
 */
export async function threadCpu(pid: number | "self"): Promise<Map<string, Stats>> {
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
export type Stats = [number, number, number, number];

/** Per thread name: its {@linkcode Stats} summed over `after - before`, and how many threads. */
export function byThreadName(
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

/**
 * Prints each side's threads by name, per `per` `unit`s (refreshes): user and
 * system CPU, time waited for a CPU, times put on a CPU. Threads with almost
 * nothing are left out.
 */
export function printThreads(
  sides: (readonly [string, Map<string, [...Stats, number]>])[],
  per: number,
  unit = "join",
): void {
  for (const [side, threads] of sides) {
    for (
      const [name, [u, s, w, runs, n]] of [...threads].sort((a, b) =>
        b[1][0] + b[1][1] - a[1][0] - a[1][1]
      )
    ) {
      if (u + s + w < per * 0.005) continue;
      console.log(
        `  ${side.padEnd(6)} ${name.padEnd(20)} x${n}: user ${fmt(u / per, 2)} + sys ${
          fmt(s / per, 2)
        } ms/${unit}, waited for a CPU ${fmt(w / per, 2)} ms/${unit}, on a CPU ${
          fmt(runs / per, 1)
        } times/${unit}`,
      );
    }
  }
}
