import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { KeyboundError } from "../../src/errors.ts";
import { generateKeyPair, keyId } from "../../src/crypto/keys.ts";
import { fromBase64Url, toBase64Url, utf8 } from "../../src/util/encoding.ts";
import {
  createChallenge,
  solveChallenge,
  verifyChallengeSolution,
} from "../../src/protocol/challenge.ts";
import {
  issueJoinState,
  JoinStateVerificationError,
  verifyJoinState,
} from "../../src/protocol/join_state.ts";
import { openSession, sealSession } from "../../src/protocol/session.ts";
import { CompactSign, decodeProtectedHeader } from "jose";

const CLUSTER = "example.com";
const T0 = new Date("2026-11-23T12:00:00Z");
const at = (s: number) => new Date(T0.getTime() + s * 1000);

async function rejectsWithCode(fn: () => Promise<unknown>, code: string): Promise<KeyboundError> {
  const e = await assertRejects(fn, KeyboundError);
  assertEquals(e.code, code);
  return e;
}

Deno.test("challenge document has the fixed field order and claim values", async () => {
  const kp = await generateKeyPair("EdDSA");
  const { challenge, claims } = await createChallenge({
    clusterName: CLUSTER,
    publicKey: kp.publicKey,
    now: T0,
  });
  assertEquals(Object.keys(JSON.parse(challenge)), [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "nonce",
  ]);
  const iat = T0.getTime() / 1000;
  assertEquals(claims.iat, iat);
  assertEquals(claims.exp, iat + 60);
  assertEquals(claims.nbf, iat - 10);
  assertEquals(claims.sub, await keyId(kp.publicKey));
  assertEquals(claims.aud, CLUSTER);
  assert(/^[0-9a-f]{32}$/.test(claims.nonce));
});

for (const alg of ["EdDSA", "ES256"] as const) {
  Deno.test(`challenge solution with ${alg} verifies; payload is the exact challenge bytes`, async () => {
    const kp = await generateKeyPair(alg);
    const { challenge } = await createChallenge({
      clusterName: CLUSTER,
      publicKey: kp.publicKey,
      now: T0,
    });
    const solution = await solveChallenge(kp.privateKey, challenge);
    const [h, p] = solution.split(".");
    assertEquals(JSON.parse(new TextDecoder().decode(fromBase64Url(h))), { alg, typ: "JWT" });
    assertEquals(new TextDecoder().decode(fromBase64Url(p)), challenge);
    await verifyChallengeSolution({
      solution,
      challenge,
      publicKey: kp.publicKey,
      clusterName: CLUSTER,
      now: at(5),
    });
  });
}

Deno.test("challenge solution: wrong key, expiry, altered claims and nonce fail", async () => {
  const kp = await generateKeyPair("EdDSA");
  const other = await generateKeyPair("EdDSA");
  const { challenge, claims } = await createChallenge({
    clusterName: CLUSTER,
    publicKey: kp.publicKey,
    now: T0,
  });
  const base = { challenge, publicKey: kp.publicKey, clusterName: CLUSTER, now: at(1) };
  const byOther = await solveChallenge(other.privateKey, challenge);
  await rejectsWithCode(
    () => verifyChallengeSolution({ ...base, solution: byOther }),
    "CHALLENGE_FAILED",
  );

  const good = await solveChallenge(kp.privateKey, challenge);
  // exp = iat+60, leeway 60: valid at +120, expired at +121.
  await verifyChallengeSolution({ ...base, solution: good, now: at(120) });
  await rejectsWithCode(
    () => verifyChallengeSolution({ ...base, solution: good, now: at(121) }),
    "CHALLENGE_FAILED",
  );

  const variants: Record<string, unknown>[] = [
    { ...claims, nonce: "00".repeat(16) },
    { ...claims, iat: claims.iat + 1 },
    { ...claims, exp: claims.exp + 1 },
    { ...claims, nbf: claims.nbf - 1 },
    { ...claims, iss: "evil.example" },
    { ...claims, aud: "evil.example" },
    { ...claims, sub: "x" },
  ];
  for (const v of variants) {
    const forged = await solveChallenge(kp.privateKey, JSON.stringify(v));
    await rejectsWithCode(
      () => verifyChallengeSolution({ ...base, solution: forged }),
      "CHALLENGE_FAILED",
    );
  }
  // An audience array containing the cluster is accepted, as go-jose does.
  const arr = await solveChallenge(kp.privateKey, JSON.stringify({ ...claims, aud: [CLUSTER] }));
  await verifyChallengeSolution({ ...base, solution: arr });
  // Garbage and truncation.
  await rejectsWithCode(
    () => verifyChallengeSolution({ ...base, solution: good.slice(0, -4) }),
    "CHALLENGE_FAILED",
  );
  await rejectsWithCode(
    () => verifyChallengeSolution({ ...base, solution: "not.a.jws" }),
    "CHALLENGE_FAILED",
  );
});

Deno.test("challenge solution with an unexpected alg is refused", async () => {
  const kp = await generateKeyPair("EdDSA");
  const { challenge } = await createChallenge({
    clusterName: CLUSTER,
    publicKey: kp.publicKey,
    now: T0,
  });
  const hmacKey = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, true, [
    "sign",
  ]);
  const hs = await new CompactSign(utf8(challenge)).setProtectedHeader({ alg: "HS256" }).sign(
    hmacKey,
  );
  await rejectsWithCode(
    () =>
      verifyChallengeSolution({
        solution: hs,
        challenge,
        publicKey: kp.publicKey,
        clusterName: CLUSTER,
        now: T0,
      }),
    "CHALLENGE_FAILED",
  );
});

async function caKeys() {
  const a = await generateKeyPair("EdDSA");
  const b = await generateKeyPair("EdDSA");
  return [
    { kid: await keyId(a.publicKey), keyPair: a },
    { kid: await keyId(b.publicKey), keyPair: b },
  ];
}

const STATE = {
  bot_instance_id: "11111111-1111-4111-8111-111111111111",
  recovery_sequence: 2,
  recovery_limit: 3,
  recovery_mode: "",
};

Deno.test("join state: issued with kid, verified by kid among trusted keys", async () => {
  const keys = await caKeys();
  const js = await issueJoinState({
    clusterName: CLUSTER,
    botName: "b1",
    key: keys[1],
    now: T0,
    claims: STATE,
  });
  assertEquals(decodeProtectedHeader(js), { alg: "EdDSA", typ: "JWT", kid: keys[1].kid });
  const payload = JSON.parse(new TextDecoder().decode(fromBase64Url(js.split(".")[1])));
  assertEquals(payload.exp, undefined);
  assertEquals(payload.nbf, payload.iat - 10);
  const claims = await verifyJoinState({
    joinState: js,
    clusterName: CLUSTER,
    botName: "b1",
    trustedKeys: keys,
    now: at(3600 * 24 * 365),
    expect: { recoverySequence: 2, botInstanceId: STATE.bot_instance_id },
  });
  assertEquals(claims, STATE);
});

Deno.test("join state: mismatches, forgery, truncation and foreign keys fail", async () => {
  const keys = await caKeys();
  const js = await issueJoinState({
    clusterName: CLUSTER,
    botName: "b1",
    key: keys[0],
    now: T0,
    claims: STATE,
  });
  const base = {
    joinState: js,
    clusterName: CLUSTER,
    botName: "b1",
    trustedKeys: keys,
    now: T0,
    expect: { recoverySequence: 2, botInstanceId: STATE.bot_instance_id },
  };
  const bad: Partial<typeof base>[] = [
    { expect: { recoverySequence: 3, botInstanceId: STATE.bot_instance_id } },
    { expect: { recoverySequence: 2, botInstanceId: "other" } },
    { botName: "b2" },
    { clusterName: "other.example" },
    { trustedKeys: [keys[1]] },
    { joinState: js.slice(0, -3) },
    { joinState: js.split(".").slice(0, 2).join(".") },
    { joinState: "garbage" },
    { now: at(-120) },
  ];
  for (const b of bad) {
    await assertRejects(() => verifyJoinState({ ...base, ...b }), JoinStateVerificationError);
  }
  // A document with a forged payload under a valid header does not verify.
  const [h, , s] = js.split(".");
  const forgedPayload = toBase64Url(utf8(JSON.stringify({ ...STATE, recovery_sequence: 9 })));
  await assertRejects(
    () => verifyJoinState({ ...base, joinState: `${h}.${forgedPayload}.${s}` }),
    JoinStateVerificationError,
  );
  // Signed by an untrusted key that claims a trusted kid.
  const rogue = await generateKeyPair("EdDSA");
  const rogueJs = await issueJoinState({
    clusterName: CLUSTER,
    botName: "b1",
    key: { kid: keys[0].kid, keyPair: rogue },
    now: T0,
    claims: STATE,
  });
  await assertRejects(
    () => verifyJoinState({ ...base, joinState: rogueJs }),
    JoinStateVerificationError,
  );
});

Deno.test("session: seal/open round trip; forged, foreign-key and expired blobs fail", async () => {
  const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, [
    "encrypt",
    "decrypt",
  ]);
  const other = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, [
    "encrypt",
    "decrypt",
  ]);
  const exp = T0.getTime() / 1000 + 60;
  const blob = await sealSession(key, { sid: "s1", exp, data: "x" });
  assertEquals(await openSession<{ sid: string; exp: number; data: string }>(key, blob, T0), {
    sid: "s1",
    exp,
    data: "x",
  });
  await openSession(key, blob, at(60));
  await rejectsWithCode(() => openSession(key, blob, at(61)), "SESSION_INVALID");
  await rejectsWithCode(() => openSession(other, blob, T0), "SESSION_INVALID");
  const bytes = fromBase64Url(blob);
  bytes[20] ^= 1;
  await rejectsWithCode(() => openSession(key, toBase64Url(bytes), T0), "SESSION_INVALID");
  await rejectsWithCode(() => openSession(key, blob.slice(0, 30), T0), "SESSION_INVALID");
  await rejectsWithCode(() => openSession(key, "!!!", T0), "SESSION_INVALID");
});
