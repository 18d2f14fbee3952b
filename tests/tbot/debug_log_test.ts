/**
 * `-d` / `debug: true` produce debug lines a support engineer can follow —
 * each request of the join, the renewal schedule, each storage write — and
 * never a key, the registration secret or the join state.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "../_assert.ts";
import { runTbot, spawnTbot } from "./_harness.ts";
import { servedBot } from "./_served_bot.ts";

/** Secret material that must never reach a log: the secret and every stored key and state. */
async function secrets(storage: string, registrationSecret: string): Promise<string[]> {
  const out = [registrationSecret];
  for (const file of ["id_bkp", "key", "bkp_state", "bkp_key_history.json"]) {
    const text = await Deno.readTextFile(`${storage}/${file}`).catch(() => "");
    // Any 24-character run of a PEM body, a JWT or a JSON value would give it away.
    for (const run of text.match(/[A-Za-z0-9+/=_.-]{24,}/g) ?? []) out.push(run.slice(0, 24));
  }
  return out;
}

Deno.test("tbot -d: the join's requests and the storage writes are traced; no secret is", async () => {
  await using bot = await servedBot("keybound-debug-");
  const storage = `${bot.dir}/bot`;
  await bot.writeConfig({ storage, output: `${bot.dir}/out` });
  const r = await runTbot(["start", "-c", bot.config, "--oneshot", "-d"]);
  assertEquals(r.code, 0, r.stderr);
  const log = r.stderr;
  assertMatch(
    log,
    /DEBUG http component=tbot method=POST path=\/v1\/join\/bound-keypair\/begin status=200 ms=\d+/,
  );
  assertMatch(
    log,
    /DEBUG http component=tbot method=POST path=\/v1\/join\/bound-keypair\/continue status=200/,
  );
  assertMatch(log, /DEBUG storage locked component=tbot/);
  for (const file of ["id_bkp", "bkp_state", "key", "tlscert"]) {
    assertMatch(log, new RegExp(`DEBUG storage write component=tbot file=${file} bytes=\\d+`));
  }
  assertMatch(log, /DEBUG output-write running component=tbot service=identity-output-1 attempt=1/);
  const leaked = (await secrets(storage, bot.secret)).filter((s) => log.includes(s));
  assertEquals(leaked, [], "secret material in the debug log");

  const quiet = await runTbot(["start", "-c", bot.config, "--oneshot"]);
  assertEquals(quiet.code, 0, quiet.stderr);
  assert(!quiet.stderr.includes("DEBUG"), quiet.stderr);
});

Deno.test("tbot debug: true: the daemon logs when it runs next", async () => {
  await using bot = await servedBot("keybound-debug-");
  await bot.writeConfig({
    storage: `${bot.dir}/bot`,
    extra: "debug: true\ndiag_addr: 127.0.0.1:0",
  });
  const d = spawnTbot(["start", "-c", bot.config]);
  try {
    await d.waitForLog(
      /DEBUG next run scheduled component=tbot tasks=\S+ in_seconds=\d+ at=\S+/,
    );
    d.kill("SIGTERM");
    assertEquals(await d.exited(), 0, d.log());
    const leaked = (await secrets(`${bot.dir}/bot`, bot.secret)).filter((s) => d.log().includes(s));
    assertEquals(leaked, [], "secret material in the debug log");
  } finally {
    try {
      d.kill("SIGKILL");
    } catch { /* already gone */ }
    await d.exited();
  }
});
