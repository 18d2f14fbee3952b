/**
 * A {@linkcode processDir}'s stop (its dispose, its watchdog, a later
 * process's sweep) ends the processes the test's fixtures started in it and
 * nothing else: a process that merely names a path inside the directory
 * (an operator's `tail -f` of a log there) runs on. Real processes.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { processDir, processIdentity, recordProcess, sweepProcessDirs } from "./_watchdog.ts";

/** Whether `pid` runs (a zombie has ended: it waits only to be reaped). */
function running(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** `tail -f path`: a fixture's process when tracked, a bystander in a session of its own. */
function tail(path: string, own = false): Deno.ChildProcess {
  return new Deno.Command(own ? "setsid" : "tail", {
    args: own ? ["tail", "-f", path] : ["-f", path],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

async function end(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch { /* ended */ }
  await child.status;
}

Deno.test("processDir: its stop ends what the test started in it, not a bystander naming it", async () => {
  const place = await processDir();
  const log = `${place.dir}/auth.log`;
  await Deno.writeTextFile(log, "x\n");
  const fixture = tail(log);
  place.track(fixture.pid);
  const spawned = place.spawned(() => tail(log));
  const bystander = tail(log, true);
  try {
    assert(running(fixture.pid) && running(spawned.pid) && running(bystander.pid));
    await place[Symbol.asyncDispose]();
    assert(!running(fixture.pid), "the tracked process was ended");
    assert(!running(spawned.pid), "the process started in spawned() was ended");
    assert(running(bystander.pid), "the bystander runs on");
    assertEquals((await fixture.status).signal, "SIGTERM");
    assert(!(await Deno.stat(place.dir).then(() => true, () => false)), "the directory is gone");
  } finally {
    await Promise.all([fixture, spawned, bystander].map(end));
  }
});

Deno.test("sweepProcessDirs: ends a gone owner's processes, not a bystander naming its directory", async () => {
  const parent = await Deno.makeTempDir();
  const dir = `${parent}/keybound-ha-left`;
  await Deno.mkdir(dir);
  // The owner: a process that has ended.
  const gone = new Deno.Command("sleep", { args: ["60"] }).spawn();
  const owner = processIdentity(gone.pid)!;
  await end(gone);
  await Deno.writeTextFile(`${dir}/owner`, `${owner}\n`);
  const log = `${dir}/auth.log`;
  await Deno.writeTextFile(log, "x\n");
  const fixture = tail(log);
  recordProcess(dir, fixture.pid);
  const bystander = tail(log, true);
  try {
    assertEquals(await sweepProcessDirs(parent), [dir]);
    assert(!running(fixture.pid), "the recorded process was ended");
    assert(running(bystander.pid), "the bystander runs on");
  } finally {
    await Promise.all([fixture, bystander].map(end));
    await Deno.remove(parent, { recursive: true });
  }
});
