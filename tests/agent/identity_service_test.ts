import { createStoredKeypair, StaticClientState } from "../../src/agent/client_state.ts";
import { loadIdentity } from "../../src/agent/identity.ts";
import { NO_LOCAL_CREDENTIALS } from "../../src/agent/identity_service.ts";
import { parseKeyHistory } from "../../src/agent/key_history.ts";
import { MemoryStorage } from "../../src/agent/memory_storage.ts";
import { describeJoinFailure } from "../../src/agent/refusal.ts";
import { type AgentStorage, readText, STORAGE_FILES } from "../../src/agent/storage.ts";
import { generateStorableKeyPair, importPkcs8Pem } from "../../src/crypto/keys.ts";
import { parseAuthorizedKey, toAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { KeyboundError } from "../../src/errors.ts";
import { silentLogger } from "../../src/util/log.ts";
import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
} from "../_assert.ts";
import { copyStorage, openAgent } from "./_agent.ts";
import { type Cluster, clusterWithBot, newCluster } from "./_cluster.ts";

const HOUR = 3600_000;

async function joinedCluster<S extends MemoryStorage = MemoryStorage>(
  limit = 1,
  storage: S = new MemoryStorage() as S,
): Promise<{ cluster: Cluster; storage: S; secret: string }> {
  const { cluster, secret } = await clusterWithBot(limit);
  const agent = await openAgent(cluster, storage, { secret });
  await agent.service.renew();
  return { cluster, storage, secret };
}

async function snapshot(storage: AgentStorage): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of await storage.list()) out[name] = (await readText(storage, name))!;
  return out;
}

const status = async (c: Cluster) => (await c.token("example")).status!.bound_keypair!;

Deno.test("first join: the registration secret binds a key generated on this host", async () => {
  const { cluster, secret } = await clusterWithBot();
  const storage = new MemoryStorage();
  const agent = await openAgent(cluster, storage, { secret });
  const id = await agent.service.renew();
  assertEquals(id.botName, "example");
  assertEquals(id.generation, 1);
  const st = await status(cluster);
  assertEquals(st.recovery_count, 1);
  assertEquals(st.bound_bot_instance_id, id.botInstanceId);
  assertEquals(
    st.bound_public_key,
    (await readText(storage, STORAGE_FILES.boundPublicKey))!.trim(),
  );
  assertEquals(agent.requests[0].body.initial_join_secret, secret);
  assertEquals(agent.requests[0].body.previous_join_state, undefined);
  for (
    const f of [
      "id_bkp",
      "id_bkp.pub",
      "bkp_state",
      "bkp_key_history.json",
      "key",
      "key.pub",
      "key-cert.pub",
      "tlscert",
      "tlscacerts",
      "sshcacerts",
      "tokenhash",
    ]
  ) {
    assert(await storage.read(f), `${f} is written`);
  }
});

Deno.test("restart: a valid identity refreshes; no recovery consumed, same instance, no secret sent", async () => {
  const { cluster, storage, secret } = await joinedCluster();
  const before = await status(cluster);
  const joinStateBefore = await readText(storage, STORAGE_FILES.joinState);
  const agent = await openAgent(cluster, storage, { secret });
  const first = agent.service.identity!;
  const id = await agent.service.renew();
  assertEquals(id.botInstanceId, first.botInstanceId);
  assertEquals(id.generation, first.generation + 1);
  assertEquals((await status(cluster)).recovery_count, before.recovery_count);
  assertEquals(
    agent.requests[0].body.initial_join_secret,
    undefined,
    "the secret is sent only without join state",
  );
  assert(agent.requests[0].path.endsWith("/begin"));
  assertEquals(agent.requests[0].body.previous_join_state, joinStateBefore, "sent byte for byte");
});

Deno.test("expired certificates: one recovery, a new bot instance", async () => {
  const { cluster, storage } = await joinedCluster(2);
  const agent = await openAgent(cluster, storage, { aheadMs: 2 * HOUR });
  const old = agent.service.identity!;
  assert(!agent.service.hasValidIdentity());
  const id = await agent.service.renew();
  assertNotEquals(id.botInstanceId, old.botInstanceId);
  assertEquals(id.generation, 1);
  assertEquals((await status(cluster)).recovery_count, 2);
  const instance = (await cluster.instances("example")).find((i) =>
    i.spec.instance_id === id.botInstanceId
  )!;
  assertEquals(instance.spec.previous_instance_id, old.botInstanceId);
});

Deno.test("limit reached: a clear refusal, no key lost; raising the limit recovers the same host", async () => {
  const { cluster, storage } = await joinedCluster(1);
  const agent = await openAgent(cluster, storage, { aheadMs: 2 * HOUR });
  const before = await snapshot(storage);
  const err = await assertRejects(() => agent.service.renew(), KeyboundError);
  assertEquals(err.code, "NO_RECOVERIES_REMAINING");
  const line = describeJoinFailure(err, {
    tokenName: "example",
    server: "https://auth.test",
    staticKey: false,
  });
  assertStringIncludes(line, "NO_RECOVERIES_REMAINING");
  assertStringIncludes(line, "raising spec.bound_keypair.recovery.limit on token/example");
  assert(!line.includes("\n"), "one line");
  assertEquals(await snapshot(storage), before, "a refused join changes nothing on the host");

  await cluster.setRecoveryLimit("example", 2);
  const id = await agent.service.renew();
  assertEquals(id.botName, "example");
  assertEquals((await status(cluster)).recovery_count, 2);
});

Deno.test("rotation: the next join rotates; the key is stored before the answer, the old one stays", async () => {
  const { cluster, storage } = await joinedCluster();
  const oldKey = (await readText(storage, STORAGE_FILES.boundPublicKey))!.trim();
  await cluster.rotate("example");
  let checkedBeforeAnswer = false;
  const agent = await openAgent(cluster, storage, {
    onRequest: async (_path, body) => {
      const answer = body.answer as { type?: string; public_key?: string } | undefined;
      if (answer?.type !== "rotation_response") return;
      const history = parseKeyHistory((await readText(storage, STORAGE_FILES.keyHistory))!);
      const blobs = await Promise.all(
        history.map(async (e) => toAuthorizedKey((await importPkcs8Pem(e.private_key)).publicKey)),
      );
      assert(blobs.includes(answer.public_key!), "the new key is persisted before it is sent");
      assertEquals(
        await readText(storage, STORAGE_FILES.boundPublicKey),
        oldKey + "\n",
        "not active yet",
      );
      checkedBeforeAnswer = true;
    },
  });
  await agent.service.renew();
  assert(checkedBeforeAnswer);
  const newKey = (await readText(storage, STORAGE_FILES.boundPublicKey))!.trim();
  assertNotEquals(newKey, oldKey);
  assertEquals((await status(cluster)).bound_public_key, newKey);
  assert(await agent.state.findPrivateKey(oldKey), "the old key stays in the history");
  assertEquals(parseKeyHistory((await readText(storage, STORAGE_FILES.keyHistory))!).length, 2);
  // Rotation is asked once per rotate_after: the next join does not rotate again.
  await agent.service.renew();
  assertEquals((await readText(storage, STORAGE_FILES.boundPublicKey))!.trim(), newKey);
});

Deno.test("copied storage with valid certificates: the generation check locks the token, both refused", async () => {
  const { cluster, storage } = await joinedCluster();
  const copy = new MemoryStorage();
  await copyStorage(storage, copy);
  const a = await openAgent(cluster, storage);
  const b = await openAgent(cluster, copy);
  await a.service.renew();
  const eb = await assertRejects(() => b.service.renew(), KeyboundError);
  assertEquals(eb.code, "GENERATION_MISMATCH");
  assertEquals((await cluster.locks()).length, 1);
  const ea = await assertRejects(() => a.service.renew(), KeyboundError);
  assertEquals(ea.code, "LOCKED");
  assertStringIncludes(
    describeJoinFailure(ea, { tokenName: "example", server: "s", staticKey: false }),
    "tctl rm lock/",
  );
});

Deno.test("copied storage after expiry: the join-state check locks the token, both refused", async () => {
  const { cluster, storage } = await joinedCluster(5);
  const copy = new MemoryStorage();
  await copyStorage(storage, copy);
  const a = await openAgent(cluster, storage, { aheadMs: 2 * HOUR });
  const b = await openAgent(cluster, copy, { aheadMs: 2 * HOUR });
  await a.service.renew();
  const eb = await assertRejects(() => b.service.renew(), KeyboundError);
  assertEquals(eb.code, "JOIN_STATE_INVALID");
  assertStringIncludes(
    describeJoinFailure(eb, { tokenName: "example", server: "s", staticKey: false }),
    "copied to another host",
  );
  assertEquals((await cluster.locks())[0].spec.target.join_token, "example");
  const ea = await assertRejects(() => a.service.renew(), KeyboundError);
  assertEquals(ea.code, "LOCKED");
});

Deno.test("preregistered key: tbot keypair create, then a join with no secret", async () => {
  const cluster = await newCluster();
  await cluster.createBot("example");
  const storage = new MemoryStorage();
  const publicKey = await createStoredKeypair(storage, silentLogger);
  await cluster.createToken("example", "example", {
    onboarding: { initial_public_key: publicKey },
  });
  const agent = await openAgent(cluster, storage);
  const id = await agent.service.renew();
  assertEquals(id.generation, 1);
  const bound = await parseAuthorizedKey((await status(cluster)).bound_public_key!);
  const ours = await parseAuthorizedKey(publicKey);
  assertEquals(bound.blob, ours.blob);
});

Deno.test("no key and no secret: Teleport's advice, and nothing is sent", async () => {
  const cluster = await newCluster();
  const agent = await openAgent(cluster, new MemoryStorage());
  const e = await assertRejects(() => agent.service.renew(), KeyboundError);
  assertEquals(e.message, NO_LOCAL_CREDENTIALS);
  assertEquals(agent.requests.length, 0);
});

Deno.test("static key: joins an insecure-mode token, persists no bound state, refuses rotation", async () => {
  const cluster = await newCluster();
  await cluster.createBot("example");
  const kp = await generateStorableKeyPair();
  await cluster.createToken("example", "example", {
    onboarding: { initial_public_key: await toAuthorizedKey(kp.publicKey) },
    recovery: { limit: 5, mode: "insecure" },
  });
  const storage = new MemoryStorage();
  const state = await StaticClientState.fromPem(kp.pkcs8Pem);
  const agent = await openAgent(cluster, storage, { state });
  await agent.service.renew();
  assertEquals(await storage.read(STORAGE_FILES.boundKey), null);
  assertEquals(await storage.read(STORAGE_FILES.joinState), null);
  const again = await openAgent(cluster, storage, { state, aheadMs: 2 * HOUR });
  await again.service.renew();
  assertEquals(again.requests[0].body.previous_join_state, undefined);
  await cluster.rotate("example");
  const e = await assertRejects(() => again.service.renew(), KeyboundError);
  assertStringIncludes(e.message, "static private keys do not support automatic rotation");
});

Deno.test("a changed token name discards the stored identity", async () => {
  const { cluster, storage } = await joinedCluster();
  const agent = await openAgent(cluster, storage, { token: "other" });
  assertEquals(agent.service.identity, null);
});

Deno.test("CA_KEY_DROPPED on a refresh: the still-valid certificate is discarded, one recovery", async () => {
  const { cluster, storage } = await joinedCluster(2);
  let refused = 0;
  const lines: string[] = [];
  // The server's answer to a certificate whose CA key a completed rotation dropped
  // (tests/rotation/agent_*_test.ts gets it from a real rotation).
  const dropping = ((input: string | URL | Request, init?: RequestInit) => {
    const body = typeof init?.body === "string" ? JSON.parse(init.body) : {};
    if (body.certificate && refused++ === 0) {
      return Promise.resolve(Response.json(
        new KeyboundError("CA_KEY_DROPPED", "the certificate's CA key was dropped").toJSON(),
        { status: 401 },
      ));
    }
    return cluster.fetch(input, init);
  }) as typeof fetch;
  const agent = await openAgent(cluster, storage, {
    fetch: dropping,
    log: { write: (l) => lines.push(l) },
  });
  const old = agent.service.identity!;
  assert(agent.service.hasValidIdentity(), "the certificate is within its TTL");
  const id = await agent.service.renew();
  assertEquals(refused, 1, "one refused refresh, then a join without the certificate");
  assertNotEquals(id.botInstanceId, old.botInstanceId);
  assertEquals((await status(cluster)).recovery_count, 2, "one recovery consumed");
  const warn = lines.find((l) => l.includes("CA rotation dropped"));
  assert(warn?.includes("consumes one recovery"), `a plain warning: ${lines.join("\n")}`);
  // And the next renewal is an ordinary refresh of the new instance.
  const next = await agent.service.renew();
  assertEquals(next.botInstanceId, id.botInstanceId);
  assertEquals((await status(cluster)).recovery_count, 2);
});

Deno.test("a restart loads the stored identity; a certificate of another key is not loaded", async () => {
  const { storage } = await joinedCluster();
  const loaded = await loadIdentity(storage, "example", silentLogger);
  assertEquals(loaded?.botName, "example");
  assertEquals(loaded?.generation, 1);
  // The key file replaced by another P-256 key: the stored certificate no longer matches it.
  const other = await generateStorableKeyPair("ES256");
  await storage.write(STORAGE_FILES.key, other.pkcs8Pem);
  assertEquals(await loadIdentity(storage, "example", silentLogger), null);
});

/** A memory storage that counts reads of the pending-join record. */
class CountingStorage extends MemoryStorage {
  pendingReads = 0;
  override read(name: string): Promise<Uint8Array | null> {
    if (name === STORAGE_FILES.pendingJoin) this.pendingReads++;
    return super.read(name);
  }
}

Deno.test("renewals read the pending-join record only until the service knows there is none", async () => {
  const { cluster, storage } = await joinedCluster(1, new CountingStorage());
  assertEquals(storage.pendingReads, 1, "the first renewal read it once and found none");
  // A restarted bot reads it once more; its own group writes then remove any record.
  const agent = await openAgent(cluster, storage);
  await agent.service.renew();
  await agent.service.renew();
  await agent.service.renew();
  assertEquals(storage.pendingReads, 2);
});

Deno.test("a join whose answer was lost is resumed by the same service's next renewal", async () => {
  const { cluster, storage } = await joinedCluster();
  let lose = true;
  const losing = (async (input: string | URL | Request, init?: RequestInit) => {
    const res = await cluster.fetch(input, init);
    const path = new URL(input instanceof Request ? input.url : input).pathname;
    if (lose && path.endsWith("/continue") && res.ok) {
      lose = false;
      throw new TypeError("connection reset");
    }
    return res;
  }) as typeof fetch;
  const agent = await openAgent(cluster, storage, { fetch: losing });
  const before = agent.service.identity!;
  await assertRejects(() => agent.service.renew(), KeyboundError);
  assert(await readText(storage, STORAGE_FILES.pendingJoin), "the record stays");
  const id = await agent.service.renew();
  assertEquals(agent.requests.at(-1)?.path, "/v1/join/bound-keypair/resume");
  assertEquals(id.generation, before.generation + 1, "the committed join, not a new one");
  assertEquals(await readText(storage, STORAGE_FILES.pendingJoin), null);
  assertEquals((await agent.service.renew()).generation, before.generation + 2);
});
