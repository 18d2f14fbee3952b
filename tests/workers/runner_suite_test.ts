/**
 * The shared runner suite against the Durable Object bot in real workerd:
 * the same cases tbot's daemon passes (tests/agent/runner/runner_test.ts),
 * driven through the object's alarm and RPC methods.
 *
 * @module
 */
import type { DurableObjectNamespace } from "../../runtime-adapters/workers/types.ts";
import type { ErrorCode } from "../../src/errors.ts";
import { assertEquals } from "../_assert.ts";
import { runnerCases, type SuiteBot as Bot, type SuiteDriver } from "../agent/runner/_suite.ts";
import { bundle, startWorker } from "./_harness.ts";
import type { SuiteBot } from "./runner_suite_worker.ts";

type Rpc = Pick<
  SuiteBot,
  | "store"
  | "failWith"
  | "joins"
  | "wakeIn"
  | "fireAlarm"
  | "alarmsHandled"
  | "renewTogether"
  | "start"
  | "readiness"
>;

/** Polls `cond` in real time for up to about ten seconds. */
async function until(cond: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`gave up waiting for ${what}`);
}

Deno.test("runner on the Durable Object's alarm (workerd): the shared suite", async (t) => {
  await using script = await bundle(new URL("./runner_suite_worker.ts", import.meta.url));
  await using worker = await startWorker(script.path, {
    durableObjects: { BOT_IDENTITY: "SuiteBot" },
    bindings: {
      AUTH_SERVER: "http://127.0.0.1:9",
      TBOT_TOKEN: "suite",
      TBOT_CREDENTIAL_TTL: "1h",
      TBOT_RENEWAL_INTERVAL: "20m",
    },
  });
  const ns = await worker.mf.getDurableObjectNamespace(
    "BOT_IDENTITY",
  ) as unknown as DurableObjectNamespace<Rpc>;
  let n = 0;
  const driver: SuiteDriver = (renewalInterval) => {
    assertEquals(renewalInterval, 20 * 60_000, "the Worker's bindings set 20m");
    const rpc = ns.get(ns.idFromName(`case-${n++}`));
    const fire = async () => {
      const before = await rpc.fireAlarm();
      await until(async () => {
        const j = await rpc.joins();
        return await rpc.alarmsHandled() > before && j.inFlight === 0;
      }, "the alarm");
    };
    const bot: Bot = {
      // renewNow is the alarm's path (it renews on a fresh activation); otherwise /readyz's.
      start: async (renewNow) => void (renewNow ? await fire() : await rpc.start()),
      store: async (generation) => await rpc.store(generation),
      failWith: async (code: ErrorCode | null) => await rpc.failWith(code),
      joins: async () => {
        const j = await rpc.joins();
        return { joins: j.joins, maxInFlight: j.maxInFlight };
      },
      wakeIn: async () => await rpc.wakeIn(),
      fire,
      status: async () => {
        const r = await rpc.readiness();
        return {
          status: r.status,
          ...(r.reason ? { reason: r.reason } : {}),
          ...(r.generation === undefined ? {} : { generation: r.generation }),
        };
      },
      renewTogether: async (count) => await rpc.renewTogether(count),
      close: () => Promise.resolve(),
    };
    return Promise.resolve(bot);
  };
  for (const [name, run] of Object.entries(runnerCases)) {
    await t.step(name, () => run(driver));
  }
});
