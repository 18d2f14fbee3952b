/**
 * The shared runner suite on the daemon's timers (a fake clock in Deno),
 * plus the policy's numbers.
 *
 * @module
 */
import {
  backoffDelay,
  BotRunner,
  isRetryable,
  jitteredInterval,
  startupBackoff,
  Wakeup,
} from "../../../src/agent/runner/mod.ts";
import { TbotMetrics } from "../../../src/agent/metrics.ts";
import { KeyboundError } from "../../../src/errors.ts";
import { silentLogger } from "../../../src/util/log.ts";
import { assert, assertEquals, assertStringIncludes } from "../../_assert.ts";
import { FakeClock, settle } from "../_fake_clock.ts";
import { waitUntil } from "../../_wait.ts";
import { ScriptedIdentity } from "./_scripted_identity.ts";
import { runnerCases, type SuiteDriver } from "./_suite.ts";

const daemon: SuiteDriver = (renewalInterval) => {
  const clock = new FakeClock();
  const identity = new ScriptedIdentity(() => clock.now().getTime());
  const runner = new BotRunner({ identity, renewalInterval, clock, log: silentLogger });
  const idle = () => waitUntil(() => identity.inFlight === 0, "the join to finish");
  return Promise.resolve({
    start: async (renewNow) => await runner.start({ renewNow }),
    store: (generation) => Promise.resolve(identity.store(generation)),
    failWith: (code) => Promise.resolve(void (identity.failWith = code)),
    joins: () => Promise.resolve({ joins: identity.joins, maxInFlight: identity.maxInFlight }),
    wakeIn: () => Promise.resolve(clock.pendingDelays[0] ?? null),
    fire: async () => {
      await clock.advance(clock.pendingDelays[0]);
      await idle();
      await settle();
    },
    status: () => {
      const s = runner.status();
      return Promise.resolve({
        status: s.status,
        ...(s.reason ? { reason: s.reason } : {}),
        ...(s.identity ? { generation: s.identity.generation } : {}),
      });
    },
    renewTogether: async (n) => {
      identity.hold();
      const all = Promise.all(
        Array.from(
          { length: n },
          () => runner.renew().then((i) => i.generation, (e: KeyboundError) => e.code),
        ),
      );
      await settle();
      identity.release();
      return await all;
    },
    close: () => runner.stop(),
  });
};

for (const [name, run] of Object.entries(runnerCases)) {
  Deno.test(`runner on daemon timers: ${name}`, () => run(daemon));
}

Deno.test("policy: 1 s doubling; jitter only lengthens retries and only shortens intervals", () => {
  assertEquals([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, () => 0)), [
    1000,
    2000,
    4000,
    8000,
    16000,
    32000,
  ]);
  assert(backoffDelay(1, () => 0.99) <= 1250);
  assertEquals(jitteredInterval(20 * 60_000, () => 0), 20 * 60_000);
  assert(jitteredInterval(20 * 60_000, () => 0.999) > 20 * 60_000 * 6 / 7);
  // Half jitter with random() = 0: half of 1, 2, 4 … s, capped at half a minute.
  assertEquals(
    [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => startupBackoff(n, () => 0)),
    [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000],
  );
  assert(!isRetryable(new KeyboundError("NO_RECOVERIES_REMAINING", "no rejoins remaining")));
  assert(isRetryable(new TypeError("fetch failed")));
});

Deno.test("runner metrics: retries within an iteration, failed iterations, one iteration count", async () => {
  const clock = new FakeClock();
  const identity = new ScriptedIdentity(() => clock.now().getTime());
  const metrics = new TbotMetrics("test");
  const runner = new BotRunner({
    identity,
    renewalInterval: 20 * 60_000,
    clock,
    random: () => 0,
    log: silentLogger,
    metrics,
  });
  const labels = { service: "identity", name: "bot-identity-renewal" };
  try {
    await runner.start({ renewNow: true });
    identity.failWith = "CONNECTION_FAILED";
    await clock.advance(clock.pendingDelays[0]);
    await waitUntil(() => identity.inFlight === 0 && clock.pendingSleeps === 1);
    assertEquals(clock.pendingDelays, [1000]);
    await clock.advance(1000);
    await waitUntil(() => identity.inFlight === 0 && clock.pendingDelays[0] === 2000);
    identity.failWith = null;
    await clock.advance(2000);
    await waitUntil(() => runner.status().identity?.generation === 2);
    assertEquals(metrics.iterationsTotal.value(labels), 2);
    assertEquals(metrics.iterationsFailed.value(labels), 0);
    assertStringIncludes(
      metrics.render(),
      'tbot_task_iterations_successful_sum{service="identity",name="bot-identity-renewal"} 2',
    );
  } finally {
    await runner.stop();
  }
});

Deno.test("wakeup: queued once when nobody waits", async () => {
  const w = new Wakeup();
  assert(w.fire());
  assertEquals(w.fire(), false, "a second reload while one is queued is reported");
  await w.wait(new AbortController().signal);
});

Deno.test("CA_KEY_DROPPED on an output's signed call: the certificate is given up, the bot renews now, the output retries with the new one", async () => {
  const clock = new FakeClock();
  const identity = new ScriptedIdentity(() => clock.now().getTime());
  const dropped: number[] = [];
  const source = Object.assign(identity, {
    dropCertificate: () => {
      dropped.push(identity.identity!.generation);
      // What IdentityService does: the dropped certificate no longer counts as valid.
      identity.identity = { ...identity.identity!, notAfter: new Date(0) };
    },
  });
  const written: number[] = [];
  let refuse = false;
  const output = {
    type: "identity",
    name: "out",
    describe: () => "test output",
    init: () => Promise.resolve(),
    write: (id: { generation: number }) => {
      if (refuse && written.length === 1) {
        refuse = false;
        return Promise.reject(new KeyboundError("CA_KEY_DROPPED", "dropped key"));
      }
      written.push(id.generation);
      return Promise.resolve();
    },
  };
  const runner = new BotRunner({
    identity: source,
    renewalInterval: 20 * 60_000,
    clock,
    random: () => 0,
    log: silentLogger,
    outputs: [{ ...output, renewalInterval: 60_000 }],
  });
  try {
    await runner.start({ renewNow: true });
    assertEquals(written, [1]);
    refuse = true;
    // The output's own interval comes first; its call is refused.
    await clock.advance(60_000);
    await waitUntil(() => dropped.length === 1 && identity.inFlight === 0);
    await waitUntil(() => runner.status().identity?.generation === 2, "a renewal at once");
    assertEquals(dropped, [1]);
    await clock.advance(clock.pendingDelays[0]);
    await waitUntil(() => written.length === 2, "the output's retry");
    assertEquals(written, [1, 2], "the retry uses the renewed identity");
  } finally {
    await runner.stop();
  }
});

Deno.test("CA_KEY_DROPPED for a call signed before a renewal does not give up the renewed identity", async () => {
  const clock = new FakeClock();
  const identity = new ScriptedIdentity(() => clock.now().getTime());
  const dropped: number[] = [];
  const source = Object.assign(identity, {
    dropCertificate: () => {
      dropped.push(identity.identity!.generation);
      identity.identity = { ...identity.identity!, notAfter: new Date(0) };
    },
  });
  let late: ((e: Error) => void) | null = null;
  let slow = false;
  const output = {
    type: "identity",
    name: "out",
    describe: () => "test output",
    init: () => Promise.resolve(),
    write: () => {
      if (!slow) return Promise.resolve();
      slow = false;
      return new Promise<void>((_, reject) => (late = reject));
    },
  };
  const runner = new BotRunner({
    identity: source,
    renewalInterval: 20 * 60_000,
    clock,
    random: () => 0,
    log: silentLogger,
    outputs: [{ ...output, renewalInterval: 60_000 }],
  });
  try {
    await runner.start({ renewNow: true });
    slow = true;
    await clock.advance(60_000);
    await waitUntil(() => late !== null, "the output's call in flight with generation 1");
    await runner.renew();
    assertEquals(runner.status().identity?.generation, 2);
    late!(new KeyboundError("CA_KEY_DROPPED", "the old certificate, refused late"));
    await waitUntil(() => identity.inFlight === 0);
    await clock.advance(1);
    assertEquals(dropped, [], "the renewed identity is kept");
    assertEquals(identity.joins, 2, "no second recovery");
  } finally {
    await runner.stop();
  }
});

Deno.test("retryIfKeyDropped: a runtime's own signed call recovers once and is made again", async () => {
  const clock = new FakeClock();
  const identity = new ScriptedIdentity(() => clock.now().getTime());
  const source = Object.assign(identity, {
    dropCertificate: () => {
      identity.identity = { ...identity.identity!, notAfter: new Date(0) };
    },
  });
  const runner = new BotRunner({
    identity: source,
    renewalInterval: 20 * 60_000,
    clock,
    log: silentLogger,
  });
  try {
    await runner.start({ renewNow: true });
    const seen: number[] = [];
    const answer = await runner.retryIfKeyDropped(await runner.validIdentity(), (id) => {
      seen.push(id.generation);
      return seen.length === 1
        ? Promise.reject(new KeyboundError("CA_KEY_DROPPED", "dropped key"))
        : Promise.resolve("svid");
    });
    assertEquals([answer, seen], ["svid", [1, 2]]);
    const other = await runner.retryIfKeyDropped(
      await runner.validIdentity(),
      () => Promise.reject(new KeyboundError("ACCESS_DENIED", "no")),
    ).catch((e) => e.code);
    assertEquals(other, "ACCESS_DENIED", "other refusals are not retried");
    assertEquals(identity.joins, 2);
  } finally {
    await runner.stop();
  }
});
