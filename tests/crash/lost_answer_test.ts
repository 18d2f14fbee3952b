/**
 * Issue #15, deterministic half: for each join kind, the server commits and
 * a real HTTP proxy on loopback drops the answer; the next run of the agent
 * on the same storage (a directory, or a Deno KV file reopened) continues
 * by resuming — no lock, no extra recovery, the generation advanced exactly
 * once. (The Durable Object storage: tests/workers/bot_identity_test.ts.)
 */
import { DirectoryStorage } from "../../runtime-adapters/deno/dir_storage.ts";
import { DenoKvAgentStorage } from "../../runtime-adapters/deno/kv_agent_storage.ts";
import type { AgentStorage } from "../../src/agent/storage.ts";
import { createStoredKeypair } from "../../src/agent/client_state.ts";
import { readText, STORAGE_FILES } from "../../src/agent/storage.ts";
import { KeyboundError } from "../../src/errors.ts";
import { silentLogger } from "../../src/util/log.ts";
import { latestGeneration } from "../../src/server/bot_instances.ts";
import { listAudit } from "../../src/server/audit.ts";
import { assert, assertEquals, assertNotEquals, assertRejects } from "../_assert.ts";
import { openAgent } from "../agent/_agent.ts";
import { type Cluster, newCluster } from "../agent/_cluster.ts";
import { startDroppingProxy } from "./_dropping_proxy.ts";

const HOUR = 3600_000;
type Kind =
  | "onboarding by secret"
  | "onboarding by preregistered key"
  | "refresh"
  | "recovery"
  | "rotation";

type StorageType = "directory" | "deno_kv";

async function world(type: StorageType) {
  const cluster = await newCluster();
  await cluster.createBot("example");
  const served = await cluster.serve();
  const proxy = startDroppingProxy(served.url, cluster.hostCaPem);
  const dir = await Deno.makeTempDir({ prefix: "keybound-lost-answer-" });
  let kv: DenoKvAgentStorage | null = null;
  // What a restarted process does: open the storage afresh.
  const reopen = async (): Promise<AgentStorage> => {
    if (type === "directory") {
      const storage = new DirectoryStorage(dir);
      await storage.init();
      return storage;
    }
    kv?.close();
    kv = await DenoKvAgentStorage.open(`${dir}/bot.kv`);
    await kv.init();
    return kv;
  };
  const close = async () => {
    kv?.close();
    await proxy.close();
    await served.stop();
    await Deno.remove(dir, { recursive: true });
  };
  return { cluster, proxy, reopen, close };
}

const tokenStatus = async (c: Cluster) => (await c.token("example")).status!.bound_keypair!;

async function instanceGeneration(c: Cluster, id: string): Promise<number> {
  const inst = (await c.instances("example")).find((i) => i.spec.instance_id === id);
  assert(inst, `instance ${id} exists`);
  return latestGeneration(inst);
}

const KINDS: Kind[] = [
  "onboarding by secret",
  "onboarding by preregistered key",
  "refresh",
  "recovery",
  "rotation",
];
for (const type of ["directory", "deno_kv"] as StorageType[]) {
  for (const kind of KINDS) {
    Deno.test(`lost answer, ${kind}, ${type}: the next run resumes with no lock and no extra recovery`, async () => {
      const { cluster, proxy, reopen, close } = await world(type);
      let storage = await reopen();
      try {
        let secret: string | undefined;
        if (kind === "onboarding by preregistered key") {
          const pub = await createStoredKeypair(storage, silentLogger, cluster.now);
          await cluster.createToken("example", "example", {
            onboarding: { initial_public_key: pub },
            recovery: { limit: 2, mode: "standard" },
          });
        } else {
          secret = await cluster.createToken("example", "example", {
            recovery: { limit: 2, mode: "standard" },
          });
        }
        const open = async (aheadMs = 0) => {
          storage = await reopen();
          return await openAgent(cluster, storage, { secret, baseUrl: proxy.url, fetch, aheadMs });
        };
        const onboarding = kind.startsWith("onboarding");
        if (!onboarding) await (await open()).service.renew();
        if (kind === "rotation") await cluster.rotate("example");
        const before = onboarding ? null : await tokenStatus(cluster);
        const beforeKey = (await readText(storage, STORAGE_FILES.boundPublicKey))?.trim();
        // Recovery: the agent's clock says its certificate has expired.
        const ahead = kind === "recovery" ? 2 * HOUR : 0;

        proxy.dropNextResult();
        const crashed = await open(ahead);
        const lost = await assertRejects(() => crashed.service.renew(), KeyboundError);
        assertEquals(lost.code, "CONNECTION_FAILED");
        assertEquals(proxy.dropped(), 1, "the server committed and the answer was dropped");
        assert(await readText(storage, STORAGE_FILES.pendingJoin), "a pending record was left");
        const committed = await tokenStatus(cluster);

        // The next run (a new process on the same storage).
        const next = await open(ahead);
        const id = await next.service.renew();
        assertEquals(next.requests.map((r) => r.path), ["/v1/join/bound-keypair/resume"]);
        assertEquals(await cluster.locks(), [], "no lock");
        const after = await tokenStatus(cluster);
        assertEquals(after, committed, "the resume changed nothing on the token");
        assertEquals(await readText(storage, STORAGE_FILES.pendingJoin), null);
        assertEquals(
          after.bound_public_key,
          (await readText(storage, STORAGE_FILES.boundPublicKey))?.trim(),
        );

        if (onboarding) {
          assertEquals(after.recovery_count, 1);
          assertEquals(id.generation, 1);
        } else if (kind === "recovery") {
          assertEquals(after.recovery_count, before!.recovery_count + 1, "exactly one recovery");
          assertEquals(id.generation, 1);
          assertEquals((await cluster.instances("example")).length, 2);
        } else {
          assertEquals(after.recovery_count, before!.recovery_count, "no recovery");
          assertEquals(id.generation, 2, "generation +1 exactly once");
        }
        assertEquals(after.bound_bot_instance_id, id.botInstanceId);
        assertEquals(await instanceGeneration(cluster, id.botInstanceId), id.generation);
        if (kind === "rotation") {
          assertNotEquals(after.bound_public_key, beforeKey, "the rotation took effect");
          assert(after.last_rotated_at);
        }
        assertEquals((await listAudit(cluster.ctx, { type: "bot.join_resumed" })).items.length, 1);

        // And the bot carries on: a normal refresh after the resume.
        const later = await open();
        const again = await later.service.renew();
        assertEquals(again.generation, id.generation + 1);
        assertEquals(again.botInstanceId, id.botInstanceId);
        assertEquals(await cluster.locks(), []);
        assertEquals((await tokenStatus(cluster)).recovery_count, after.recovery_count);
      } finally {
        await close();
      }
    });
  }
}
