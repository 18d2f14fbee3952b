/**
 * Issue #15: the resume does not weaken copy detection (docs/security.md,
 * "Crash-safe joins"). A copy made before a join, a copy made while a
 * pending record exists, and holders racing to resume one record: the token
 * locks / exactly one resumes. Also the endpoint's own refusals.
 */
import { MemoryStorage } from "../../src/agent/memory_storage.ts";
import { resumeBoundKeypair } from "../../src/agent/join_client.ts";
import { pendingSubjectKey, readPendingJoin } from "../../src/agent/pending_join.ts";
import { StoredClientState } from "../../src/agent/client_state.ts";
import type { AgentStorage } from "../../src/agent/storage.ts";
import { generateKeyPair } from "../../src/crypto/keys.ts";
import { randomHex } from "../../src/crypto/random.ts";
import { KeyboundError } from "../../src/errors.ts";
import { JOIN_RESUME_PATH } from "../../src/protocol/join_resume.ts";
import { listAudit } from "../../src/server/audit.ts";
import { joinResumeKey } from "../../src/server/keys.ts";
import { silentLogger } from "../../src/util/log.ts";
import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { copyStorage, openAgent } from "../agent/_agent.ts";
import type { Cluster } from "../agent/_cluster.ts";
import { joinedThroughDrop } from "./_drop.ts";

const HOUR = 3600_000;

async function copyOf(storage: AgentStorage): Promise<MemoryStorage> {
  const copy = new MemoryStorage();
  await copyStorage(storage, copy);
  return copy;
}

const resumes = async (c: Cluster) =>
  (await listAudit(c.ctx, { type: "bot.join_resumed" })).items.length;

/** Drops the answer of a refresh: the server committed generation 2, `storage` holds a record. */
async function lostRefresh() {
  const w = await joinedThroughDrop();
  w.drop.drop();
  const a = await openAgent(w.cluster, w.storage, { fetch: w.drop.fetch });
  assertEquals(
    (await assertRejects(() => a.service.renew(), KeyboundError)).code,
    "CONNECTION_FAILED",
  );
  assert(await readPendingJoin(w.storage, "example", silentLogger), "a pending record exists");
  return w;
}

Deno.test("copy made before a join: it cannot resume, and its next join locks the token", async () => {
  const w = await joinedThroughDrop();
  const copy = await copyOf(w.storage); // before the join: no pending record, no new key
  w.drop.drop();
  const a = await openAgent(w.cluster, w.storage, { fetch: w.drop.fetch });
  await assertRejects(() => a.service.renew(), KeyboundError);
  assertEquals((await openAgent(w.cluster, w.storage)).service.identity?.generation, 1);
  const resumed = await (await openAgent(w.cluster, w.storage)).service.renew();
  assertEquals(resumed.generation, 2);

  const b = await openAgent(w.cluster, copy);
  const err = await assertRejects(() => b.service.renew(), KeyboundError);
  assertEquals(err.code, "GENERATION_MISMATCH");
  assertEquals(b.requests.map((r) => r.path).includes(JOIN_RESUME_PATH), false);
  assertEquals((await w.cluster.locks()).length, 1, "the token is locked");
  assertEquals(await resumes(w.cluster), 1);
});

Deno.test("copy made before a recovery: it cannot resume; its recovery fails the join state and locks", async () => {
  const w = await joinedThroughDrop();
  const copy = await copyOf(w.storage);
  w.drop.drop();
  const a = await openAgent(w.cluster, w.storage, { fetch: w.drop.fetch, aheadMs: 2 * HOUR });
  await assertRejects(() => a.service.renew(), KeyboundError);
  await (await openAgent(w.cluster, w.storage, { aheadMs: 2 * HOUR })).service.renew();
  const b = await openAgent(w.cluster, copy, { aheadMs: 2 * HOUR });
  assertEquals(
    (await assertRejects(() => b.service.renew(), KeyboundError)).code,
    "JOIN_STATE_INVALID",
  );
  assertEquals((await w.cluster.locks()).length, 1);
  assertEquals((await w.cluster.token("example")).status!.bound_keypair!.recovery_count, 2);
});

Deno.test("copy made while a pending record exists: one resumes, the other is caught by the generation counter", async () => {
  const w = await lostRefresh();
  const copy = await copyOf(w.storage);
  const thief = await openAgent(w.cluster, copy);
  assertEquals((await thief.service.renew()).generation, 2, "the copy resumed first");
  const a = await openAgent(w.cluster, w.storage);
  const err = await assertRejects(() => a.service.renew(), KeyboundError);
  assertEquals(a.requests[0].path, JOIN_RESUME_PATH, "it tried to resume first");
  assertEquals(err.code, "GENERATION_MISMATCH", "then joined normally and was caught");
  assertEquals((await w.cluster.locks()).length, 1, "the token is locked");
  assertEquals(await resumes(w.cluster), 1);
  // The thief's identity is refused from now on too.
  assertEquals((await assertRejects(() => thief.service.renew(), KeyboundError)).code, "LOCKED");
});

Deno.test("copy made while a record exists, after the bot got its answer: identical state, caught at the next refresh", async () => {
  const w = await joinedThroughDrop();
  // The record of this refresh exists on the server although the answer arrived.
  const holder = await openAgent(w.cluster, w.storage, {
    onRequest: async (path) => {
      if (path.endsWith("/continue")) copied = await copyOf(w.storage);
    },
  });
  let copied: MemoryStorage | undefined;
  const got = await holder.service.renew();
  const thief = await openAgent(w.cluster, copied!);
  const stolen = await thief.service.renew();
  assertEquals(stolen.generation, got.generation, "the same result, no new generation");
  assertEquals(stolen.botInstanceId, got.botInstanceId);
  await (await openAgent(w.cluster, w.storage)).service.renew(); // the bot refreshes: generation 3
  const err = await assertRejects(() => thief.service.renew(), KeyboundError);
  assertEquals(err.code, "GENERATION_MISMATCH");
  assertEquals((await w.cluster.locks()).length, 1);
});

Deno.test("two processes resuming the same record at once: exactly one resumes", async () => {
  const w = await lostRefresh();
  const copy = await copyOf(w.storage);
  const [a, b] = await Promise.all([openAgent(w.cluster, w.storage), openAgent(w.cluster, copy)]);
  const settled = await Promise.allSettled([a.service.renew(), b.service.renew()]);
  const ok = settled.filter((s) => s.status === "fulfilled");
  assertEquals(ok.length, 1, JSON.stringify(settled.map((s) => s.status)));
  assertEquals(await resumes(w.cluster), 1);
  const lost = settled.find((s) => s.status === "rejected") as PromiseRejectedResult;
  assertEquals((lost.reason as KeyboundError).code, "GENERATION_MISMATCH");
  assertEquals((await w.cluster.locks()).length, 1, "the loser's normal join locked the token");
});

Deno.test("the resume endpoint: 20 concurrent resumes of one record, exactly one answer", async () => {
  const w = await lostRefresh();
  const pending = (await readPendingJoin(w.storage, "example", silentLogger))!;
  const state = await StoredClientState.load(w.storage, silentLogger);
  const boundKey = (await state.findPrivateKey(pending.bound_public_key))!;
  const subject = await pendingSubjectKey(w.storage, pending);
  // Twenty holders of the record, each with its own claim.
  const ids = Array.from({ length: 20 }, () => randomHex(16));
  const call = (resumeId: string) =>
    resumeBoundKeypair({
      baseUrl: "https://auth.test",
      fetch: w.cluster.fetch,
      session: pending.session,
      resumeId,
      clusterName: pending.cluster_name,
      boundKey,
      subjectKey: subject.privateKey,
    });
  const settled = await Promise.allSettled(ids.map(call));
  const ok = settled.filter((s) => s.status === "fulfilled") as PromiseFulfilledResult<
    { generation: number }
  >[];
  assertEquals(ok.length, 1);
  assertEquals(ok[0].value.generation, 2);
  for (const s of settled) {
    if (s.status === "rejected") assertEquals((s.reason as KeyboundError).code, "RESUME_NOT_FOUND");
  }
  // The claimant whose answer is lost again gets the same result; the others still nothing.
  const winner = ids[settled.findIndex((s) => s.status === "fulfilled")];
  assertEquals(await call(winner), ok[0].value);
  const loser = ids.find((id) => id !== winner)!;
  assertEquals(
    (await assertRejects(() => call(loser), KeyboundError)).code,
    "RESUME_NOT_FOUND",
  );
  assert(await w.cluster.ctx.backend.get(joinResumeKey("example")), "one record, claimed");
  assertEquals(await resumes(w.cluster), 1);
  assertEquals(await w.cluster.locks(), []);
});

Deno.test("the resume endpoint refuses wrong keys, a stale proof, a forged session and a lock", async () => {
  const w = await lostRefresh();
  const pending = (await readPendingJoin(w.storage, "example", silentLogger))!;
  const state = await StoredClientState.load(w.storage, silentLogger);
  const boundKey = (await state.findPrivateKey(pending.bound_public_key))!;
  const subject = (await pendingSubjectKey(w.storage, pending)).privateKey;
  const other = (await generateKeyPair("ES256")).privateKey;
  const base = {
    baseUrl: "https://auth.test",
    fetch: w.cluster.fetch,
    session: pending.session,
    resumeId: randomHex(16),
    clusterName: pending.cluster_name,
  };
  const code = async (p: Partial<Parameters<typeof resumeBoundKeypair>[0]>) =>
    (await assertRejects(
      () => resumeBoundKeypair({ ...base, boundKey, subjectKey: subject, ...p }),
      KeyboundError,
    )).code;

  assertEquals(await code({ subjectKey: other }), "RESUME_PROOF_INVALID", "no certificate key");
  assertEquals(await code({ boundKey: other }), "RESUME_PROOF_INVALID", "no bound key");
  assertEquals(await code({ clusterName: "evil.example" }), "RESUME_PROOF_INVALID");
  assertEquals(await code({ now: new Date(Date.now() - 10 * 60_000) }), "RESUME_PROOF_INVALID");
  assertEquals(await code({ session: pending.session.slice(0, -4) + "AAAA" }), "SESSION_INVALID");

  // A lock on the token refuses the resume; lifting it lets the bot resume.
  await w.cluster.ctx.backend.commit({
    checks: [],
    mutations: [{
      type: "set",
      key: ["resources", "lock", "l1"],
      value: {
        kind: "lock",
        version: "v2",
        metadata: { name: "l1" },
        spec: { target: { join_token: "example" } },
      },
    }, { type: "set", key: ["locks_changed"], value: { at: "x" } }],
  });
  assertEquals(await code({}), "LOCKED");
  await w.cluster.ctx.backend.commit({
    checks: [],
    mutations: [{ type: "delete", key: ["resources", "lock", "l1"] }, {
      type: "set",
      key: ["locks_changed"],
      value: { at: "y" },
    }],
  });
  assertEquals(
    (await resumeBoundKeypair({ ...base, boundKey, subjectKey: subject })).generation,
    2,
  );
  // Only for this claimant.
  assertEquals(await code({ resumeId: randomHex(16) }), "RESUME_NOT_FOUND");
});

Deno.test("a join the server never committed: the record is dropped and the bot joins normally", async () => {
  const w = await joinedThroughDrop();
  // The bot dies after storing its record, before the answer is sent.
  const a = await openAgent(w.cluster, w.storage, {
    onRequest: (path) => {
      if (path.endsWith("/continue")) throw new TypeError("killed before sending");
    },
  });
  await assertRejects(() => a.service.renew(), KeyboundError);
  assert(await readPendingJoin(w.storage, "example", silentLogger));
  const next = await openAgent(w.cluster, w.storage);
  const id = await next.service.renew();
  assertEquals(next.requests.map((r) => r.path), [
    JOIN_RESUME_PATH,
    "/v1/join/bound-keypair/begin",
    "/v1/join/bound-keypair/continue",
  ]);
  assertEquals(id.generation, 2);
  assertEquals(await readPendingJoin(w.storage, "example", silentLogger), null);
  assertEquals(await w.cluster.locks(), []);
});

Deno.test("#8 item 7: a certificate that expires between begin and continue falls back to recovery", async () => {
  const w = await joinedThroughDrop();
  const before = (await w.cluster.token("example")).status!.bound_keypair!.recovery_count;
  const real = w.cluster.now;
  const later = () => new Date(real().getTime() + 2 * HOUR);
  const a = await openAgent(w.cluster, w.storage, {
    onRequest: (path, body) => {
      // Time passes between `begin` and the signed `continue` of the refresh.
      if (path.endsWith("/continue") && body.answer) {
        w.cluster.now = later;
        (w.cluster.ctx as { now(): Date }).now = later;
      }
    },
  });
  const id = await a.service.renew();
  assertEquals(id.generation, 1, "a new instance: the refresh became a recovery");
  const st = (await w.cluster.token("example")).status!.bound_keypair!;
  assertEquals(st.recovery_count, before + 1);
  assertEquals(st.bound_bot_instance_id, id.botInstanceId);
  assertEquals(await w.cluster.locks(), []);
  const failed = (await listAudit(w.cluster.ctx, { type: "join.failed" })).items;
  assertEquals(failed.map((e) => e.error), ["UNAUTHENTICATED"]);
});

Deno.test("a continue still in flight from a dead client cannot commit once the next run was told RESUME_NOT_FOUND", async () => {
  const w = await joinedThroughDrop();
  // The client dies with its final continue still on the way (held here).
  let held: (() => Promise<Response>) | null = null;
  const dying = await openAgent(w.cluster, w.storage, {
    fetch: (input, init) => {
      const path = new URL(input instanceof Request ? input.url : input).pathname;
      if (path.endsWith("/continue") && !held) {
        const body = init?.body as string;
        held = () => w.cluster.fetch(input, { ...init, body });
        return Promise.reject(new TypeError("killed"));
      }
      return w.cluster.fetch(input, init);
    },
  });
  await assertRejects(() => dying.service.renew(), KeyboundError);
  let late: Response | null = null;
  const next = await openAgent(w.cluster, w.storage, {
    onRequest: async (path) => {
      // After the resume was refused, the dead client's continue arrives.
      if (path.endsWith("/begin") && held && !late) late = await held();
    },
  });
  const id = await next.service.renew();
  assertEquals(next.requests[0].path, JOIN_RESUME_PATH);
  assertEquals(late!.status, 400);
  assertEquals(
    (await late!.json()).error.code,
    "SESSION_INVALID",
    "the closed session never commits",
  );
  assertEquals(id.generation, 2);
  assertEquals(await w.cluster.locks(), []);
  assertEquals((await (await openAgent(w.cluster, w.storage)).service.renew()).generation, 3);
  assertEquals(await w.cluster.locks(), []);
});

Deno.test("the resume's own answer is lost: the next run resumes again with the same claim", async () => {
  const w = await lostRefresh();
  let drop = true;
  const a = await openAgent(w.cluster, w.storage, {
    fetch: async (input, init) => {
      const res = await w.cluster.fetch(input, init);
      const path = new URL(input instanceof Request ? input.url : input).pathname;
      if (path === JOIN_RESUME_PATH && res.ok && drop) {
        drop = false;
        throw new TypeError("killed while the resume answer was on its way");
      }
      return res;
    },
  });
  await assertRejects(() => a.service.renew(), KeyboundError);
  const claim = (await readPendingJoin(w.storage, "example", silentLogger))!.resume_id;
  assert(claim, "the claim was stored before the resume was sent");
  const next = await openAgent(w.cluster, w.storage);
  const id = await next.service.renew();
  assertEquals(next.requests.map((r) => r.path), [JOIN_RESUME_PATH]);
  assertEquals(next.requests[0].body.resume_id, claim);
  assertEquals(id.generation, 2);
  assertEquals(await w.cluster.locks(), []);
  assertEquals(await resumes(w.cluster), 1);
  assertEquals((await (await openAgent(w.cluster, w.storage)).service.renew()).generation, 3);
});
