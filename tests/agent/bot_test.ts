import { type BotOptions, runBot } from "../../src/agent/bot.ts";
import { parseConfig } from "../../src/agent/config/load.ts";
import type { HeartbeatBody } from "../../src/agent/heartbeat.ts";
import { Wakeup } from "../../src/agent/runner/mod.ts";
import { MemoryStorage } from "../../src/agent/memory_storage.ts";
import { TbotMetrics } from "../../src/agent/metrics.ts";
import { IdentityOutput } from "../../src/agent/outputs/identity_output.ts";
import { ReadinessRegistry } from "../../src/agent/readiness.ts";
import { readText } from "../../src/agent/storage.ts";
import { KeyboundError } from "../../src/errors.ts";
import { createLogger, silentLogger } from "../../src/util/log.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { openAgent } from "./_agent.ts";
import { clusterWithBot } from "./_cluster.ts";
import { FakeClock } from "./_fake_clock.ts";
import { waitUntil } from "../_wait.ts";

const CONFIG = `version: v2
auth_server: 127.0.0.1:3025
onboarding:
  join_method: bound_keypair
  token: example
`;

async function setup(oneshot = false) {
  const { cluster, secret } = await clusterWithBot();
  const storage = new MemoryStorage();
  const state = { down: false };
  const agent = await openAgent(cluster, storage, { secret, down: () => state.down });
  const clock = new FakeClock(new Date());
  const readiness = new ReadinessRegistry(() => clock.now());
  const metrics = new TbotMetrics("test");
  const out = new MemoryStorage();
  const heartbeats: HeartbeatBody[] = [];
  const stop = new AbortController();
  const wakeup = new Wakeup();
  const options: BotOptions = {
    config: parseConfig(CONFIG + (oneshot ? "oneshot: true\n" : "")),
    identity: agent.service,
    outputs: [new IdentityOutput("out", out)],
    heartbeat: (_id, body) => {
      if (state.down) return Promise.reject(new KeyboundError("CONNECTION_FAILED", "down"));
      heartbeats.push(body);
      return Promise.resolve();
    },
    host: { version: "0.1.0", hostname: "host1", os: "linux", architecture: "x86_64" },
    clock,
    random: () => 0,
    log: silentLogger,
    readiness,
    metrics,
    signal: stop.signal,
    wakeup,
    server: "https://auth.test",
    tokenName: "example",
    staticKey: false,
  };
  return {
    cluster,
    storage,
    state,
    agent,
    clock,
    readiness,
    metrics,
    out,
    heartbeats,
    stop,
    wakeup,
    options,
  };
}

const healthOf = (r: ReadinessRegistry, name: string) => r.service(name)?.status;

Deno.test("daemon: survives the auth service going down and recovers without a restart", async () => {
  const s = await setup();
  const run = runBot(s.options);
  let settled = false;
  run.finally(() => settled = true);
  await waitUntil(() => healthOf(s.readiness, "heartbeat") === "healthy", "startup");
  assertEquals(healthOf(s.readiness, "identity"), "healthy");
  assertEquals(healthOf(s.readiness, "out"), "healthy");
  const firstGeneration = s.agent.service.identity!.generation;
  assert(await readText(s.out, "tlscert"), "the output is written");
  assertEquals(s.heartbeats.map((h) => h.is_startup), [true]);

  s.state.down = true;
  // Drive the clock: one renewal interval, then every backoff, until the renewal gives up.
  for (let i = 0; i < 20 && healthOf(s.readiness, "identity") !== "unhealthy"; i++) {
    await waitUntil(() => s.clock.pendingSleeps === 1, "the runner's timer armed");
    await s.clock.advance(s.clock.pendingDelays[0]);
  }
  assertEquals(healthOf(s.readiness, "identity"), "unhealthy");
  assertEquals(
    s.metrics.iterationsFailed.value({ service: "identity", name: "bot-identity-renewal" }),
    1,
  );
  assert(!settled, "the daemon stays up when retries run out");

  s.state.down = false;
  for (let i = 0; i < 5 && healthOf(s.readiness, "identity") !== "healthy"; i++) {
    await waitUntil(() => s.clock.pendingSleeps === 1, "the runner's timer armed");
    await s.clock.advance(s.clock.pendingDelays[0]);
  }
  await waitUntil(() => healthOf(s.readiness, "identity") === "healthy", "recovery");
  assertEquals(s.agent.service.identity!.generation, firstGeneration + 1);
  assert(!settled);
  s.stop.abort();
  await run;
});

Deno.test("daemon: a wake-up (SIGHUP) renews at once", async () => {
  const s = await setup();
  const run = runBot(s.options);
  await waitUntil(() =>
    healthOf(s.readiness, "heartbeat") === "healthy" && s.clock.pendingSleeps === 1
  );
  const generation = s.agent.service.identity!.generation;
  const t0 = s.clock.now().getTime();
  s.wakeup.fire();
  await waitUntil(
    () => s.agent.service.identity!.generation === generation + 1,
    "the early renewal",
  );
  assertEquals(s.clock.now().getTime(), t0, "no interval had to pass");
  s.stop.abort();
  await run;
});

Deno.test("daemon: with a stored identity, a failed start keeps running and retries", async () => {
  const s = await setup();
  await s.agent.service.renew();
  s.state.down = true;
  const run = runBot(s.options);
  await waitUntil(() => healthOf(s.readiness, "identity") === "unhealthy", "the failed start");
  s.state.down = false;
  for (let i = 0; i < 5 && healthOf(s.readiness, "identity") !== "healthy"; i++) {
    await waitUntil(() => s.clock.pendingSleeps >= 1);
    await s.clock.advance(s.clock.pendingDelays[0]);
  }
  await waitUntil(() => healthOf(s.readiness, "identity") === "healthy", "the background retry");
  s.stop.abort();
  await run;
});

Deno.test("daemon: the very first join waits for an unreachable auth service, one line per attempt, then joins", async () => {
  const s = await setup();
  const lines: string[] = [];
  s.options.log = createLogger({ component: "tbot", write: (l) => lines.push(l) });
  s.state.down = true;
  const run = runBot(s.options);
  let settled = false;
  run.finally(() => settled = true);
  for (let i = 0; i < 3; i++) {
    await waitUntil(() => s.clock.pendingSleeps === 1, "the wait for the auth service");
    await s.clock.advance(s.clock.pendingDelays[0]);
  }
  await waitUntil(() => s.clock.pendingSleeps === 1, "the fourth wait");
  const waits = lines.filter((l) => l.includes("cannot be reached yet; retrying"));
  assertEquals(waits.length, 4, lines.join("\n"));
  assertStringIncludes(waits[0], "attempt=1");
  assertStringIncludes(waits[3], "attempt=4");
  assertStringIncludes(waits[3], "cannot reach the auth service at https://auth.test");
  assertEquals(lines.filter((l) => l.includes(" ERROR ")), [], "no error line while waiting");
  assert(!settled, "the daemon waits");

  s.state.down = false;
  await s.clock.advance(s.clock.pendingDelays[0]);
  await waitUntil(() => healthOf(s.readiness, "heartbeat") === "healthy", "the join");
  assertEquals(s.agent.service.identity?.generation, 1);
  assert(!settled);
  s.stop.abort();
  await run;
});

Deno.test("daemon: the very first join is fatal when refused, and a stop while waiting is clean", async () => {
  const refused = await setup();
  await refused.cluster.setRecoveryLimit("example", 0);
  const e = await assertRejects(() => runBot(refused.options), KeyboundError);
  assertEquals(e.code, "NO_RECOVERIES_REMAINING");
  assertStringIncludes(e.message, "recovery.limit");

  const stopped = await setup();
  stopped.state.down = true;
  const run = runBot(stopped.options);
  await waitUntil(() => stopped.clock.pendingSleeps === 1, "the wait for the auth service");
  stopped.stop.abort();
  await run;
  assertEquals(stopped.agent.service.identity, null);
  assertEquals(stopped.clock.pendingSleeps, 0);
});

Deno.test("oneshot: joins, writes outputs, sends one heartbeat, returns", async () => {
  const s = await setup(true);
  await runBot(s.options);
  assert(await readText(s.out, "key"));
  assertEquals(s.heartbeats.length, 1);
  assertEquals(s.heartbeats[0].one_shot, true);
  assertEquals(s.heartbeats[0].hostname, "host1");
  assertEquals(s.clock.pendingSleeps, 0);
});

Deno.test("oneshot: a refusal is one error with the reason and the advice", async () => {
  const s = await setup(true);
  await s.cluster.setRecoveryLimit("example", 0);
  const e = await assertRejects(() => runBot(s.options), KeyboundError);
  assertEquals(e.code, "NO_RECOVERIES_REMAINING");
  assertStringIncludes(
    e.message,
    "join refused: no recovery attempts remaining (NO_RECOVERIES_REMAINING)",
  );
  assertStringIncludes(e.message, "recovery.limit");
  assertEquals(await readText(s.out, "key"), null);
});
