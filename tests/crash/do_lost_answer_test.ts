/**
 * Issue #15 on the Worker bot: the BotIdentity Durable Object in real
 * workerd (miniflare) joins a loopback auth service through a real HTTP
 * proxy that drops the answer of a committed join (onboarding, then a
 * refresh); workerd is stopped (the object evicted) and started again over
 * the same Durable Object storage, and the object resumes from its alarm at
 * once — no lock, no extra recovery, the generation advanced exactly once.
 */
import type {
  BotIdentityRpc,
  BotReadiness,
} from "../../runtime-adapters/workers/bot_identity_rpc.ts";
import type { DurableObjectNamespace } from "../../runtime-adapters/workers/types.ts";
import type { Token } from "../../src/resources/schemas.ts";
import { toHex } from "../../src/util/encoding.ts";
import { assert, assertEquals } from "../_assert.ts";
import { bundle, startWorker } from "../workers/_harness.ts";
import { provisionBot } from "../workers/_join_fixture.ts";
import { startLoopbackAuth } from "../workers/_loopback_auth.ts";
import { startDroppingProxy } from "./_dropping_proxy.ts";

const BOT_ENTRY = new URL("../../runtime-adapters/workers/bot_worker.ts", import.meta.url);

Deno.test("BotIdentity in workerd: a lost answer is resumed after an eviction", async () => {
  await using auth = await startLoopbackAuth();
  const secret = await provisionBot(auth.api, "crash-do");
  const proxy = startDroppingProxy(auth.url);
  await using script = await bundle(BOT_ENTRY);
  const persistDir = await Deno.makeTempDir({ prefix: "keybound-crash-do-" });
  const start = async () => {
    const worker = await startWorker(script.path, {
      durableObjects: { BOT_IDENTITY: "BotIdentity" },
      persistDir,
      bindings: {
        AUTH_SERVER: proxy.url,
        TBOT_TOKEN: "crash-do",
        TBOT_REGISTRATION_SECRET: secret,
        TBOT_STORAGE_KEK: toHex(kek),
        TBOT_CREDENTIAL_TTL: "1h",
        TBOT_RENEWAL_INTERVAL: "20m",
      },
    });
    const ns = await worker.mf.getDurableObjectNamespace(
      "BOT_IDENTITY",
    ) as unknown as DurableObjectNamespace<BotIdentityRpc>;
    return { worker, rpc: ns.get(ns.idFromName("crash-do")) };
  };
  const kek = crypto.getRandomValues(new Uint8Array(32));
  const status = async () =>
    ((await auth.api.get("token", "crash-do")) as Token).status!.bound_keypair!;
  // Only the alarm armed at load may join: readiness() never does.
  const resumedTo = async (rpc: BotIdentityRpc, generation: number): Promise<BotReadiness> => {
    let r = await rpc.readiness();
    for (let i = 0; i < 300 && r.generation !== generation; i++) {
      await new Promise((res) => setTimeout(res, 100));
      r = await rpc.readiness();
    }
    assertEquals(r.generation, generation, JSON.stringify(r));
    return r;
  };
  try {
    for (const [what, generation] of [["onboarding", 1], ["refresh", 2]] as const) {
      let run = await start();
      try {
        if (what === "refresh") assertEquals((await run.rpc.readiness()).generation, 1);
        proxy.dropNextResult();
        const lost = await run.rpc.renew();
        assert(!lost.ok, `${what}: the answer should have been lost`);
        assertEquals(lost.error.code, "CONNECTION_FAILED");
        assertEquals(proxy.dropped(), generation);
      } finally {
        await run.worker.stop();
      }
      run = await start();
      try {
        const r = await resumedTo(run.rpc, generation);
        assertEquals(r.status, "healthy");
        const st = await status();
        assertEquals(st.recovery_count, 1, `${what}: no extra recovery`);
        assertEquals(st.bound_bot_instance_id, r.bot_instance_id);
        assertEquals(await auth.api.list("lock"), [], `${what}: no lock`);
        assertEquals((await auth.api.audit({ type: "bot.join_resumed" })).items.length, generation);
      } finally {
        await run.worker.stop();
      }
    }
  } finally {
    await proxy.close();
    await Deno.remove(persistDir, { recursive: true }).catch(() => {});
  }
});
