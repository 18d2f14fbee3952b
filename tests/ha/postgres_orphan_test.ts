/**
 * A test process killed outright (SIGKILL: no unload handler, no dispose)
 * leaves no PostgreSQL server behind: the fixture's watchdog stops it and
 * removes its directory. And when the watchdog is gone too, the next
 * process's sweep stops it, leaving every live process's server alone.
 * Real PostgreSQL, real processes.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { ignoreUnless } from "../_tools.ts";
import { waitUntil } from "../_wait.ts";
import { postgresMissing, processIdentity, startPostgres, sweepOrphans } from "./_postgres.ts";

const ignore = ignoreUnless("PostgreSQL tests", postgresMissing);

interface Started {
  child: Deno.ChildProcess;
  dir: string;
  /** {@linkcode processIdentity} of the child's server and of its watchdog. */
  server: string;
  watchdog: string;
}

/** A `deno run` of _postgres_child.ts, once its server is up. */
async function startChild(): Promise<Started> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./_postgres_child.ts", import.meta.url).pathname],
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
  const o = JSON.parse(said) as { dir: string; server: number; watchdog: number };
  const identity = (pid: number) => {
    const id = processIdentity(pid);
    assert(id !== undefined, `process ${pid} of the child runs`);
    return id;
  };
  return { child, dir: o.dir, server: identity(o.server), watchdog: identity(o.watchdog) };
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

Deno.test({
  name: "startPostgres: a test process killed with SIGKILL leaves no PostgreSQL running",
  ignore,
  async fn() {
    const c = await startChild();
    try {
      await killNine(c.child);
      // The bound is this test's failure (a server left for good), not a speed.
      await waitUntil(() => !alive(c.server), "the killed process's server to stop", {
        timeoutMs: 60_000,
        intervalMs: 50,
      });
      await waitUntil(() => !exists(c.dir), "its directory to go", { timeoutMs: 60_000 });
    } finally {
      // Without the watchdog this cleans up after the failure.
      await killNine(c.child).catch(() => {});
      await sweepOrphans();
    }
  },
});

Deno.test({
  name: "sweepOrphans: stops the server of a killed process whose watchdog died too; " +
    "a live process's server keeps running",
  ignore,
  async fn() {
    await using mine = await startPostgres();
    const c = await startChild();
    try {
      Deno.kill(Number(c.watchdog.split(" ")[0]), "SIGKILL");
      await waitUntil(() => !alive(c.watchdog), "the watchdog to die");
      await killNine(c.child);
      assert(alive(c.server), "with its watchdog gone, the killed process's server runs on");
      // Only includes: what other runs left may be swept too.
      assert(
        (await sweepOrphans()).includes(c.dir),
        "the sweep removed the killed one's directory",
      );
      assert(!alive(c.server), "the sweep waits for the server to stop");
      assert(!exists(c.dir));
      assertEquals((await mine.psql("postgres", "SELECT 1")).trim(), "1");
    } finally {
      await killNine(c.child).catch(() => {});
      await sweepOrphans();
    }
  },
});
