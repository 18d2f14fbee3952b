/**
 * A test process killed outright (SIGKILL: no unload handler, no dispose)
 * leaves no PostgreSQL server behind: the fixture's watchdog stops it and
 * removes its directory. And when the watchdog is gone too, the next
 * process's sweep stops it, leaving every live process's server alone.
 * The same for the auth processes and HAProxy of an HA cluster
 * (tests/ha/_watchdog.ts). Real PostgreSQL, HAProxy and auth, real
 * processes.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { ignoreUnless } from "../_tools.ts";
import { waitUntil } from "../_wait.ts";
import { postgresMissing, processIdentity, startPostgres, sweepOrphans } from "./_postgres.ts";
import { haMissing } from "./_cluster.ts";
import { sweepProcessDirs } from "./_watchdog.ts";

const ignore = ignoreUnless("PostgreSQL tests", postgresMissing);
const haIgnore = ignoreUnless("HA tests", haMissing(postgresMissing));
const HA_PROCESSES: ("auth" | "haproxy")[] = ["auth", "haproxy"];

interface Started<K extends string> {
  child: Deno.ChildProcess;
  dir: string;
  /** {@linkcode processIdentity} of each process the child named. */
  pids: Record<K, string>;
}

/**
 * A `deno run` of `script` (a fixture's child in this directory), once it
 * said its directory and its processes' pids, named `names`.
 */
async function startChild<K extends string>(script: string, names: K[]): Promise<Started<K>> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(script, import.meta.url).pathname],
    cwd: new URL("../../", import.meta.url).pathname,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let said = "";
  while (!said.includes("\n")) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`the child ended before its server started: ${said}`);
    said += value;
  }
  await lines.cancel();
  const o = JSON.parse(said) as { dir: string } & Record<K, number>;
  const pids = Object.fromEntries(names.map((name) => {
    const id = processIdentity(o[name]);
    assert(id !== undefined, `the child's ${name} (${o[name]}) runs`);
    return [name, id];
  })) as Record<K, string>;
  return { child, dir: o.dir, pids };
}

const alive = (identity: string) => processIdentity(Number(identity.split(" ")[0])) === identity;

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Kills `p` with SIGKILL and waits for it. */
async function killNine(p: Deno.ChildProcess): Promise<void> {
  p.kill("SIGKILL");
  await p.status;
}

/** Fixtures whose processes must end with a test process killed outright. */
const KILLED = [
  {
    name: "startPostgres: a test process killed with SIGKILL leaves no PostgreSQL running",
    ignore,
    script: "./_postgres_child.ts",
    processes: ["server"],
    sweep: () => sweepOrphans(),
  },
  {
    name: "startHaCluster: a test process killed with SIGKILL leaves no auth process or " +
      "HAProxy running",
    ignore: haIgnore,
    script: "./_cluster_child.ts",
    processes: ["auth", "haproxy"],
    sweep: () => sweepProcessDirs(),
  },
];

for (const k of KILLED) {
  Deno.test({
    name: k.name,
    ignore: k.ignore,
    async fn() {
      const c = await startChild(k.script, [...k.processes, "watchdog"]);
      try {
        await killNine(c.child);
        // The bound is this test's failure (processes left for good), not a speed.
        for (const name of k.processes) {
          await waitUntil(() => !alive(c.pids[name]), `the killed process's ${name} to end`, {
            timeoutMs: 60_000,
            intervalMs: 50,
          });
        }
        await waitUntil(() => !exists(c.dir), "its directory to go", { timeoutMs: 60_000 });
      } finally {
        // Without the watchdog this cleans up after the failure.
        await killNine(c.child).catch(() => {});
        await k.sweep();
      }
    },
  });
}

Deno.test({
  name: "sweepOrphans: stops the server of a killed process whose watchdog died too; " +
    "a live process's server keeps running",
  ignore,
  async fn() {
    await using mine = await startPostgres();
    const c = await startChild("./_postgres_child.ts", ["server", "watchdog"]);
    try {
      Deno.kill(Number(c.pids.watchdog.split(" ")[0]), "SIGKILL");
      await waitUntil(() => !alive(c.pids.watchdog), "the watchdog to die");
      await killNine(c.child);
      assert(alive(c.pids.server), "with its watchdog gone, the killed process's server runs on");
      // Only includes: what other runs left may be swept too.
      assert(
        (await sweepOrphans()).includes(c.dir),
        "the sweep removed the killed one's directory",
      );
      assert(!alive(c.pids.server), "the sweep waits for the server to stop");
      assert(!exists(c.dir));
      assertEquals((await mine.psql("postgres", "SELECT 1")).trim(), "1");
    } finally {
      await killNine(c.child).catch(() => {});
      await sweepOrphans();
    }
  },
});

Deno.test({
  name: "sweepProcessDirs: ends the auth process and HAProxy of a killed process whose " +
    "watchdog died too",
  ignore: haIgnore,
  async fn() {
    const c = await startChild("./_cluster_child.ts", [...HA_PROCESSES, "watchdog"]);
    try {
      Deno.kill(Number(c.pids.watchdog.split(" ")[0]), "SIGKILL");
      await waitUntil(() => !alive(c.pids.watchdog), "the watchdog to die");
      await killNine(c.child);
      for (const name of HA_PROCESSES) {
        assert(alive(c.pids[name]), `with its watchdog gone, the killed process's ${name} runs on`);
      }
      assert(
        (await sweepProcessDirs()).includes(c.dir),
        "the sweep took the killed one's directory",
      );
      for (const name of HA_PROCESSES) {
        assert(!alive(c.pids[name]), `the sweep waits for the ${name} to end`);
      }
      assert(!exists(c.dir));
    } finally {
      await killNine(c.child).catch(() => {});
      await sweepProcessDirs();
    }
  },
});
