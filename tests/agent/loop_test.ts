import {
  backoffDelay,
  isRetryable,
  jitteredInterval,
  retryUntilSuccess,
  runIteration,
  runOnInterval,
  type TaskOptions,
  Wakeup,
} from "../../src/agent/loop.ts";
import { TbotMetrics } from "../../src/agent/metrics.ts";
import { ReadinessRegistry } from "../../src/agent/readiness.ts";
import { KeyboundError } from "../../src/errors.ts";
import { silentLogger } from "../../src/util/log.ts";
import { assert, assertEquals } from "../_assert.ts";
import { FakeClock } from "./_fake_clock.ts";
import { waitUntil } from "./_wait.ts";

function setup(task: () => Promise<void>, attempts = 7) {
  const clock = new FakeClock();
  const readiness = new ReadinessRegistry(() => clock.now());
  const metrics = new TbotMetrics("test");
  const stop = new AbortController();
  const failures: unknown[] = [];
  const o: TaskOptions = {
    service: "identity",
    name: "renew",
    task,
    attempts,
    clock,
    random: () => 0,
    log: silentLogger,
    signal: stop.signal,
    metrics,
    health: readiness.register("identity"),
    onFailure: (e) => void failures.push(e),
  };
  return { clock, readiness, metrics, stop, failures, o };
}

Deno.test("backoff: 1 s doubling; jitter only lengthens retries and only shortens intervals", () => {
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
});

Deno.test("runIteration: seven attempts with backoff, then unhealthy and counted as failed", async () => {
  let calls = 0;
  const s = setup(() => {
    calls++;
    return Promise.reject(new KeyboundError("CONNECTION_FAILED", "down"));
  });
  const done = runIteration(s.o);
  const waits: number[] = [];
  for (let i = 0; i < 6; i++) {
    await waitUntil(() => s.clock.pendingSleeps === 1, "a backoff sleep");
    waits.push(s.clock.pendingDelays[0]);
    await s.clock.advance(s.clock.pendingDelays[0]);
  }
  assertEquals(await done, false);
  assertEquals(calls, 7);
  assertEquals(waits, [1000, 2000, 4000, 8000, 16000, 32000]);
  assertEquals(s.readiness.service("identity")?.status, "unhealthy");
  assertEquals(s.readiness.service("identity")?.reason, "down (CONNECTION_FAILED)");
  assertEquals(s.metrics.iterationsFailed.value({ service: "identity", name: "renew" }), 1);
  assertEquals(s.metrics.iterationsTotal.value({ service: "identity", name: "renew" }), 1);
  assertEquals(s.failures.length, 1);
});

Deno.test("runIteration: a refusal no retry can fix is not retried", async () => {
  let calls = 0;
  const s = setup(() => {
    calls++;
    return Promise.reject(new KeyboundError("NO_RECOVERIES_REMAINING", "no rejoins remaining"));
  });
  assertEquals(await runIteration(s.o), false);
  assertEquals(calls, 1);
  assertEquals(s.clock.pendingSleeps, 0);
  assert(!isRetryable(s.failures[0]));
  assert(isRetryable(new TypeError("fetch failed")));
});

Deno.test("runIteration: success after retries is healthy and records the retries", async () => {
  let calls = 0;
  const s = setup(() => ++calls < 3 ? Promise.reject(new Error("flaky")) : Promise.resolve());
  const done = runIteration(s.o);
  for (let i = 0; i < 2; i++) {
    await waitUntil(() => s.clock.pendingSleeps === 1);
    await s.clock.advance(s.clock.pendingDelays[0]);
  }
  assertEquals(await done, true);
  assertEquals(s.readiness.service("identity")?.status, "healthy");
  assert(
    s.metrics.render().includes(
      'tbot_task_iterations_successful_sum{service="identity",name="renew"} 2',
    ),
  );
});

Deno.test("runOnInterval: waits one interval, runs again each interval, wakes early, stops", async () => {
  let calls = 0;
  const s = setup(() => {
    calls++;
    return Promise.resolve();
  });
  const wakeup = new Wakeup();
  const loop = runOnInterval({ ...s.o, interval: 20 * 60_000, wakeup });
  await waitUntil(() => s.clock.pendingSleeps === 1);
  assertEquals(calls, 0, "the first run comes after one interval");
  assertEquals(s.clock.pendingDelays, [20 * 60_000]);
  await s.clock.advance(20 * 60_000);
  await waitUntil(() => calls === 1 && s.clock.pendingSleeps === 1);
  assert(wakeup.fire());
  await waitUntil(() => calls === 2, "the wake-up run");
  assertEquals(s.clock.now().getTime(), new FakeClock().now().getTime() + 20 * 60_000);
  await waitUntil(() => s.clock.pendingSleeps === 1);
  s.stop.abort();
  await loop;
  assertEquals(calls, 2);
});

Deno.test("wakeup: queued once when nobody waits", async () => {
  const w = new Wakeup();
  assert(w.fire());
  assertEquals(w.fire(), false, "a second reload while one is queued is reported");
  await w.wait(new AbortController().signal);
});

Deno.test("retryUntilSuccess: backoff grows to the cap and stops when the task succeeds", async () => {
  let calls = 0;
  const s = setup(() => ++calls < 10 ? Promise.reject(new Error("down")) : Promise.resolve());
  const done = retryUntilSuccess({ ...s.o, maxDelay: 60_000 });
  const waits: number[] = [];
  while (calls < 10) {
    await waitUntil(() => s.clock.pendingSleeps === 1 || calls >= 10);
    if (calls >= 10) break;
    waits.push(s.clock.pendingDelays[0]);
    await s.clock.advance(s.clock.pendingDelays[0]);
  }
  assertEquals(await done, true);
  // Half jitter with random() = 0: half of 1, 2, 4 … s, capped at half a minute.
  assertEquals(waits, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assertEquals(s.readiness.service("identity")?.status, "healthy");
});
