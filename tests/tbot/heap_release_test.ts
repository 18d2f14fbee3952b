/**
 * A daemon hands its heap's free pages back after its joins, at most once
 * per 10 s (src/cli/tbot/heap_release.ts); a oneshot never does. The real
 * daemon is observed through V8's own GC trace: `gc()` shows as
 * mark-compacts for "testing", memory-reducing ones ("last-resort").
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { waitUntil } from "../_wait.ts";
import { tbotArgv } from "./_harness.ts";
import { servedBot } from "./_served_bot.ts";
import {
  RELEASE_GAP_MS,
  releasingAfterJoins,
  withHeapRelease,
} from "../../src/cli/tbot/heap_release.ts";
import type { BoundJoin, BoundResume, JoinResult } from "../../src/agent/join_types.ts";

Deno.test("heap release: after a join or resume settles, at most once per gap", async () => {
  let t = 0;
  let released = 0;
  const result = {} as JoinResult;
  let fail = false;
  const inner: { join: BoundJoin; resume: BoundResume } = {
    join: () => fail ? Promise.reject(new Error("refused")) : Promise.resolve(result),
    resume: () => Promise.resolve(result),
  };
  const transport = releasingAfterJoins(
    inner,
    () => released++,
    () => t,
  );
  const join = () => transport.join({} as Parameters<typeof transport.join>[0]);
  /** The timers due now, run: a release starts on one. */
  const timers = () => new Promise((r) => setTimeout(r, 0));
  // Not in the join's settlement: the caller goes on (to store the identity) first.
  let inContinuation = -1;
  await join().then(() => inContinuation = released);
  assertEquals(inContinuation, 0, "the caller's continuation runs before the release");
  await timers();
  assertEquals(released, 1, "the first join");
  t = RELEASE_GAP_MS - 1;
  await join();
  await timers();
  assertEquals(released, 1, "within the gap");
  t = RELEASE_GAP_MS;
  fail = true;
  await join().then(() => assert(false), () => {});
  await timers();
  assertEquals(released, 2, "a failed join too");
  t += 1;
  await transport.resume({} as Parameters<typeof transport.resume>[0]);
  await timers();
  assertEquals(released, 2, "a resume within the gap");
  t += RELEASE_GAP_MS;
  await transport.resume({} as Parameters<typeof transport.resume>[0]);
  await timers();
  assertEquals(released, 3, "a resume after it");

  assert(withHeapRelease(inner, {}, () => 0) === inner, "nothing to release with");
});

/** `mark-compact … testing` lines of V8's trace: the collections `gc()` ran. */
function forcedGcs(trace: string): string[] {
  return trace.split("\n").filter((l) => /Mark-Compact .* testing;/.test(l));
}

Deno.test("heap release: a real daemon collects after its join, a oneshot does not", async () => {
  await using bot = await servedBot("tbot-heap-release-");
  const config = bot.config;
  const yaml = (extra?: string) =>
    bot.writeConfig({
      storage: `${bot.dir}/bot`,
      output: `${bot.dir}/out`,
      ...(extra ? { extra } : {}),
    });
  // tbot's own flags (TBOT_DENO_FLAGS, --expose-gc among them) plus V8's GC trace on stdout.
  const spawn = (args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: tbotArgv(args, { denoFlags: ["--v8-flags=--trace-gc"] }),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  await yaml();
  const oneshot = await spawn(["start", "-c", config, "--oneshot"]).output();
  const dec = new TextDecoder();
  assertEquals(oneshot.code, 0, dec.decode(oneshot.stderr));
  assertEquals(forcedGcs(dec.decode(oneshot.stdout)).length, 0, "a oneshot exits instead");

  await yaml("renewal_interval: 1h");
  const daemon = spawn(["start", "-c", config]);
  let out = "";
  let err = "";
  const pumps = [
    (async () => {
      for await (const c of daemon.stdout.pipeThrough(new TextDecoderStream())) out += c;
    })(),
    (async () => {
      for await (const c of daemon.stderr.pipeThrough(new TextDecoderStream())) err += c;
    })(),
  ];
  try {
    // The collection starts on a timer when the join settles, while the identity is
    // stored (its writes and fsyncs run on other threads): long before the stop below.
    await waitUntil(() => err.includes("renewed the bot identity"), "the daemon's join", {
      timeoutMs: 30_000,
      intervalMs: 25,
    }).catch((e) => {
      throw new Error(`${e}\nstderr:\n${err}`);
    });
  } finally {
    daemon.kill("SIGTERM");
    await daemon.status;
    await Promise.all(pumps);
  }
  // V8's trace reaches the pipe when the process exits (stdout is block-buffered).
  // One release, collected as under memory pressure ("last-resort": V8 runs two to
  // seven memory-reducing mark-compacts, then returns its young generation's and
  // pooled pages); a plain gc() would show one mark-compact without "(reduce)".
  const gcs = forcedGcs(out);
  assert(gcs.length >= 2 && gcs.length <= 7, `one join, one release; stdout:\n${out}`);
  assert(gcs.every((l) => l.includes("Mark-Compact (reduce)")), `memory-reducing:\n${out}`);
});
