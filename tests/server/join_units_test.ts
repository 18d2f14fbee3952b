/**
 * Unit tests of the join server's parts on a MemoryBackend cluster: the
 * service called directly, the commit's retry-with-expectations, locks, bot
 * instance histories and certificate lifetimes.
 */
import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { newCluster } from "./_cluster_fixture.ts";
import { MemoryKeyStore } from "./_join_fixture.ts";
import { KeyboundError } from "../../src/errors.ts";
import { exportSpkiPem, generateKeyPair, keyId } from "../../src/crypto/keys.ts";
import { toAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { solveChallenge } from "../../src/protocol/challenge.ts";
import type { StepResponse } from "../../src/protocol/messages.ts";
import type { Bot, BotInstance, Lock, Token } from "../../src/resources/schemas.ts";
import {
  HEARTBEAT_HISTORY_LIMIT,
  newBotInstance,
  recordHeartbeat,
  withAuthentication,
} from "../../src/server/bot_instances.ts";
import type { ServerContext } from "../../src/server/context.ts";
import { certificateTtlSeconds } from "../../src/server/join/certs.ts";
import {
  commitJoin,
  expectationsOf,
  type JoinCommitPlan,
  readToken,
} from "../../src/server/join/commit.ts";
import { beginJoin } from "../../src/server/join/begin.ts";
import { continueJoin } from "../../src/server/join/continue.ts";
import { parseSubjectKey } from "../../src/server/join/subject_key.ts";
import { verifyClientCertificate } from "../../src/server/verified_certs.ts";
import { certificatesFromPem } from "../../src/pki/mod.ts";
import { challengedKey } from "../../src/server/join/challenged_keys.ts";
import { fromPem } from "../../src/util/encoding.ts";
import { lockInForce, lockMatches } from "../../src/server/locks.ts";
import { readResumeRecord } from "../../src/server/join/resume_record.ts";
import { resourceKey, usedSessionKey } from "../../src/server/keys.ts";
import type { JsonValue, Key } from "../../src/storage/backend.ts";

async function put(ctx: ServerContext, key: Key, value: unknown) {
  await ctx.backend.commit({
    checks: [],
    mutations: [{ type: "set", key, value: value as JsonValue }],
  });
}

function token(name: string, status: Record<string, unknown>, spec: Record<string, unknown> = {}) {
  return {
    kind: "token",
    version: "v2",
    metadata: { name },
    spec: {
      roles: ["Bot"],
      bot_name: "b1",
      join_method: "bound_keypair",
      bound_keypair: { onboarding: {}, recovery: { limit: 5, mode: "" }, ...spec },
    },
    status: { bound_keypair: status },
  };
}

const BOT: Bot = {
  kind: "bot",
  version: "v1",
  metadata: { name: "b1" },
  spec: { roles: [], traits: [] },
};

Deno.test("service without HTTP: onboarding by initial key, giving up, a wrong answer type", async () => {
  const { ctx } = await newCluster();
  await put(ctx, resourceKey("bot", "b1"), BOT);
  const keys = new MemoryKeyStore();
  const pub = await keys.add();
  await put(
    ctx,
    resourceKey("token", "t1"),
    token("t1", { recovery_count: 0 }, {
      onboarding: { initial_public_key: pub },
    }),
  );
  const subject = await generateKeyPair("ES256");
  const begin = {
    token_name: "t1",
    public_tls_key: await exportSpkiPem(subject.publicKey),
    public_ssh_key: await toAuthorizedKey(subject.publicKey),
  };
  const step = await beginJoin(ctx, begin, { identity: null }) as StepResponse;
  assertEquals(step.step.type, "challenge");
  if (step.step.type !== "challenge") return;
  const solution = await solveChallenge(keys.keys[0].keyPair.privateKey, step.step.challenge);
  const res = await continueJoin(ctx, {
    session: step.session,
    answer: { type: "challenge_solution", solution },
  }, { identity: null, remoteAddr: "10.0.0.1" });
  assert("result" in res && res.result);
  assertEquals(res.result.generation, 1);
  const stored = await ctx.backend.get<Token>(resourceKey("token", "t1"));
  assertEquals(stored!.value.status!.bound_keypair!.recovery_count, 1);
  // The issued certificate was remembered as verified before the answer: its
  // next presentation neither verifies a signature nor hashes anything.
  const der = certificatesFromPem(res.result.certificates.tls_cert)[0];
  const subtle = crypto.subtle as unknown as Record<string, unknown>;
  const calls: string[] = [];
  const originals = new Map<string, unknown>();
  for (const m of ["digest", "verify"]) {
    const original = subtle[m] as (...a: unknown[]) => unknown;
    originals.set(m, original);
    subtle[m] = (...a: unknown[]) => {
      calls.push(m);
      return original.apply(crypto.subtle, a);
    };
  }
  try {
    const hit = await verifyClientCertificate(ctx, der, ctx.now(), "certificate");
    assertEquals([hit.identity.botName, hit.identity.generation], ["b1", 1]);
  } finally {
    for (const [m, f] of originals) subtle[m] = f;
  }
  assertEquals(calls, []);

  // Giving up ends a session with a null result and changes nothing.
  const step2 = await beginJoin(ctx, {
    ...begin,
    previous_join_state: res.result.bound_keypair.join_state,
  }, {
    identity: null,
  }) as StepResponse;
  const gaveUp = await continueJoin(ctx, {
    session: step2.session,
    answer: { type: "giving_up", reason: "CHALLENGE_SOLUTION_FAILED" },
  }, { identity: null });
  assertEquals(gaveUp, { result: null });
  // Answering a challenge with a rotation response is a protocol error.
  const e = await assertRejects(
    () =>
      continueJoin(ctx, {
        session: step2.session,
        answer: { type: "rotation_response", public_key: pub },
      }, { identity: null }),
    KeyboundError,
  );
  assertEquals(e.code, "BAD_REQUEST");
});

async function commitFixture() {
  const { ctx } = await newCluster();
  await put(
    ctx,
    resourceKey("token", "t1"),
    token("t1", {
      recovery_count: 1,
      bound_public_key: "ssh-ed25519 AAAA",
      bound_bot_instance_id: "i1",
    }),
  );
  const read = await readToken(ctx, "t1");
  const expect = await expectationsOf(read.token);
  const auth = {
    authenticated_at: ctx.now().toISOString(),
    join_method: "bound_keypair",
    generation: 1,
    public_key: "pem",
  };
  const plan: JoinCommitPlan = {
    tokenName: "t1",
    botName: "b1",
    instanceId: "i2",
    sessionId: "sid1",
    sessionExp: Math.floor(ctx.now().getTime() / 1000) + 60,
    expect,
    consumesRecovery: true,
    applyStatus: (s) => ({
      ...s,
      recovery_count: s.recovery_count + 1,
      bound_bot_instance_id: "i2",
    }),
    events: () => [],
    instance: {
      kind: "create",
      instance: newBotInstance({
        botName: "b1",
        instanceId: "i2",
        authentication: auth,
        expires: new Date(ctx.now().getTime() + 7200_000).toISOString(),
      }),
    },
    subjectKey: "ecdsa-sha2-nistp256 AAAA",
    caRevision: ctx.cas.revision,
    result: (t) => {
      committed.token = t;
      return Promise.resolve({
        bot_name: "b1",
        bot_instance_id: "i2",
        generation: 1,
        expires: ctx.now().toISOString(),
        certificates: { tls_cert: "", tls_ca_certs: [], ssh_cert: "", ssh_ca_keys: [] },
        bound_keypair: {
          join_state: `seq=${t.status!.bound_keypair!.recovery_count}`,
          public_key: "ssh-ed25519 AAAA",
        },
      });
    },
    resumeUntil: ctx.now().getTime() + 600_000,
    locksVersion: null,
  };
  const committed: { token?: Token } = {};
  return { ctx, read, plan, committed };
}

Deno.test("commit: an unrelated concurrent token edit is retried on the fresh token", async () => {
  const { ctx, read, plan, committed: last } = await commitFixture();
  const t = (await ctx.backend.get<Token>(resourceKey("token", "t1")))!.value;
  t.spec.bound_keypair.rotate_after = "2030-01-01T00:00:00Z";
  await put(ctx, resourceKey("token", "t1"), t);
  const result = await commitJoin(ctx, plan, { token: read, instance: null });
  const committed = last.token!;
  assertEquals(committed.status!.bound_keypair!.recovery_count, 2);
  assertEquals(committed.spec.bound_keypair.rotate_after, "2030-01-01T00:00:00Z", "edit kept");
  // The result is built from the token as committed and kept, in the same
  // commit, as the token's resume record, expiring exactly when planned.
  assertEquals(result.bound_keypair.join_state, "seq=2");
  const record = await readResumeRecord(ctx, "t1");
  assertEquals(record?.value.sid, "sid1");
  assertEquals(record?.value.result, result);
  assertEquals(record?.value.bound_public_key, "ssh-ed25519 AAAA");
  assert(await ctx.backend.get(usedSessionKey("sid1")));
  assert(await ctx.backend.get(resourceKey("bot_instance", "b1", "i2")));
});

Deno.test("commit: a changed count, a lowered limit or a used session are refused", async () => {
  for (const change of ["count", "limit", "session"] as const) {
    const { ctx, read, plan } = await commitFixture();
    const t = (await ctx.backend.get<Token>(resourceKey("token", "t1")))!.value;
    if (change === "count") t.status!.bound_keypair!.recovery_count = 2;
    if (change === "limit") t.spec.bound_keypair.recovery.limit = 4;
    await put(ctx, resourceKey("token", "t1"), t);
    if (change === "session") await put(ctx, usedSessionKey("sid1"), { used_at: "x" });
    const e = await assertRejects(
      () => commitJoin(ctx, plan, { token: read, instance: null }),
      KeyboundError,
    );
    assertEquals(e.code, change === "session" ? "SESSION_INVALID" : "UNEXPECTED_BACKEND_STATE");
    assertEquals(await ctx.backend.get(resourceKey("bot_instance", "b1", "i2")), null);
  }
});

Deno.test("locks: target matching and expiry", () => {
  const lock = (target: Lock["spec"]["target"], expires?: string): Lock => ({
    kind: "lock",
    version: "v2",
    metadata: { name: "l" },
    spec: { target, ...(expires ? { expires } : {}) },
  });
  assert(lockMatches(lock({ join_token: "t" }), { join_token: "t" }));
  assert(!lockMatches(lock({ join_token: "t" }), { join_token: "u" }));
  assert(!lockMatches(lock({ join_token: "t", user: "bot-b" }), { join_token: "t" }));
  assert(lockMatches(lock({ join_token: "t", user: "bot-b" }), { join_token: "t", user: "bot-b" }));
  assert(!lockMatches(lock({ user: "bot-b" }), { join_token: "t" }));
  const now = new Date("2026-01-01T00:00:00Z");
  assert(lockInForce(lock({ join_token: "t" }), now));
  assert(lockInForce(lock({ join_token: "t" }, "2026-01-01T00:00:01Z"), now));
  assert(!lockInForce(lock({ join_token: "t" }, "2026-01-01T00:00:00Z"), now));
});

Deno.test("bot instances: authentication and heartbeat histories are capped", async () => {
  const { ctx } = await newCluster();
  const auth = (generation: number) => ({
    authenticated_at: ctx.now().toISOString(),
    join_method: "bound_keypair",
    generation,
    public_key: "pem",
  });
  let inst: BotInstance = newBotInstance({
    botName: "b1",
    instanceId: "i1",
    authentication: auth(1),
    expires: new Date(ctx.now().getTime() + 3600_000).toISOString(),
  });
  for (let g = 2; g <= 15; g++) inst = withAuthentication(inst, auth(g), "2030-01-01T00:00:00Z");
  assertEquals(inst.status.latest_authentications.map((a) => a.generation), [
    6,
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
  ]);
  assertEquals(inst.status.initial_authentication?.generation, 1);
  assertEquals(inst.metadata.expires, "2030-01-01T00:00:00Z");

  await put(ctx, resourceKey("bot_instance", "b1", "i1"), inst);
  const hb = {
    is_startup: false,
    version: "1",
    hostname: "h",
    uptime_seconds: 5,
    one_shot: false,
    architecture: "arm64",
    os: "linux",
  };
  for (let i = 0; i < 13; i++) {
    await recordHeartbeat(ctx, "b1", "i1", { ...hb, is_startup: i === 0 });
  }
  const stored = (await ctx.backend.get<BotInstance>(resourceKey("bot_instance", "b1", "i1")))!;
  assertEquals(stored.value.status.latest_heartbeats.length, HEARTBEAT_HISTORY_LIMIT);
  assertEquals(stored.value.status.initial_heartbeat?.is_startup, true);
  assertEquals(stored.value.status.latest_heartbeats[0].uptime, "5s");
  const e = await assertRejects(() => recordHeartbeat(ctx, "b1", "nope", hb), KeyboundError);
  assertEquals(e.code, "NOT_FOUND");
});

Deno.test("certificate lifetime: default, request, bot cap, hard cap", () => {
  const bot = (max?: string): Bot => ({
    ...BOT,
    spec: { roles: [], traits: [], ...(max ? { max_session_ttl: max } : {}) },
  });
  assertEquals(certificateTtlSeconds(bot(), undefined), 3600);
  assertEquals(certificateTtlSeconds(bot(), 600), 600);
  assertEquals(certificateTtlSeconds(bot(), 24 * 3600), 12 * 3600);
  assertEquals(certificateTtlSeconds(bot("30m"), 3600), 1800);
  assertEquals(certificateTtlSeconds(bot("1000h"), 1000 * 3600), 168 * 3600);
});

Deno.test("subject key: both encodings of one key, kept canonical; mismatches name the field", async () => {
  for (const alg of ["ES256", "EdDSA"] as const) {
    const kp = await generateKeyPair(alg);
    const tlsPem = await exportSpkiPem(kp.publicKey);
    const ssh = await toAuthorizedKey(kp.publicKey);
    const key = await parseSubjectKey(tlsPem, `${ssh} a comment`);
    assertEquals(key.tlsPem, tlsPem);
    assertEquals(key.ssh, ssh);
    assertEquals(key.spki, fromPem("PUBLIC KEY", tlsPem));
    // Another key of the same type, and a key of the other type, are refused.
    const other = await generateKeyPair(alg);
    const otherType = await generateKeyPair(alg === "ES256" ? "EdDSA" : "ES256");
    for (const wrong of [other, otherType]) {
      const e = await assertRejects(() => parseSubjectKey(tlsPem, "x"), KeyboundError);
      assertEquals(e.details?.path, "public_ssh_key");
      const mismatch = await assertRejects(
        async () => parseSubjectKey(tlsPem, await toAuthorizedKey(wrong.publicKey)),
        KeyboundError,
        "must be the same key",
      );
      assertEquals(mismatch.details?.path, "public_ssh_key");
    }
  }
  const e = await assertRejects(
    () => parseSubjectKey("garbage", "ssh-ed25519 AAAA"),
    KeyboundError,
  );
  assertEquals(e.details?.path, "public_tls_key");
});

Deno.test("challenged keys: parsed once per text, key ID remembered, bad text not kept", async () => {
  const kp = await generateKeyPair("EdDSA");
  const text = await toAuthorizedKey(kp.publicKey);
  const a = await challengedKey(text);
  // The same object for the same text, so its key ID (a digest) is computed once.
  assert(await challengedKey(text) === a);
  assert(keyId(a) === keyId(a));
  assertEquals(await keyId(a), await keyId(kp.publicKey));
  // Another spelling of the same key is parsed on its own, to the same key (one
  // import per key bytes: importSpki) and so the same key ID.
  const other = await challengedKey(`${text} comment`);
  assert(other === a);
  assertEquals(await keyId(other), await keyId(a));
  // Text that does not parse is refused every time, never remembered.
  for (let i = 0; i < 2; i++) {
    await assertRejects(() => challengedKey("ssh-ed25519 AAAA"), KeyboundError);
  }
});
