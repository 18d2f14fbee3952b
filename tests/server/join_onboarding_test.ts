/**
 * Case A (onboarding), cases B and C, and malformed requests, over real HTTP
 * on loopback with a Deno KV file.
 */
import { assert, assertEquals } from "../_assert.ts";
import { botSigner } from "./_cluster_fixture.ts";
import {
  events,
  getToken,
  type Harness,
  MemoryKeyStore,
  postRaw,
  putBot,
  putToken,
  rejectsCode,
  startHarness,
  TestBot,
  tokenStatus,
} from "./_join_fixture.ts";
import { generateKeyPair, publicKeysEqual } from "../../src/crypto/keys.ts";
import { parseAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { joinBoundKeypair } from "../../src/agent/join_client.ts";
import { certificatesFromPem, parseCertificate } from "../../src/pki/mod.ts";
import { JOIN_BEGIN_PATH } from "../../src/protocol/messages.ts";
import { exportSpkiPem } from "../../src/crypto/keys.ts";
import { toAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { verifyJoinState } from "../../src/protocol/join_state.ts";

function withHarness(name: string, fn: (h: Harness) => Promise<void>) {
  Deno.test(name, async () => {
    const h = await startHarness();
    try {
      await fn(h);
    } finally {
      await h.close();
    }
  });
}

async function sameKey(a: string, b: string): Promise<boolean> {
  return publicKeysEqual((await parseAuthorizedKey(a)).key, (await parseAuthorizedKey(b)).key);
}

withHarness("A: registration secret onboarding rotates to a new key and binds it", async (h) => {
  await putBot(h.ctx, "b1");
  await putToken(h.ctx, "t1", { botName: "b1", registrationSecret: "s3cret-value" });
  const bot = new TestBot(h, "t1");
  const result = await bot.join({ secret: "s3cret-value" });

  assertEquals(bot.keys.keys.length, 1, "the client generated exactly one key");
  assert(await sameKey(result.bound_keypair.public_key, bot.keys.keys[0].publicKey));
  const status = await tokenStatus(h.ctx, "t1");
  assertEquals(status.registration_secret, undefined, "secret cleared");
  assert(await sameKey(status.bound_public_key!, bot.keys.keys[0].publicKey));
  assertEquals(status.recovery_count, 1);
  assertEquals(status.bound_bot_instance_id, result.bot_instance_id);
  assertEquals(status.last_recovered_at, h.clock.t.toISOString());
  assertEquals(status.last_rotated_at, undefined, "onboarding rotation is not a rotation");
  assertEquals(result.generation, 1);

  const claims = await verifyJoinState({
    joinState: result.bound_keypair.join_state,
    clusterName: "join.test",
    botName: "b1",
    trustedKeys: h.ctx.cas.boundKeypair.jwt!,
    now: h.clock.t,
    expect: { recoverySequence: 1, botInstanceId: result.bot_instance_id },
  });
  assertEquals(claims.recovery_limit, 1);

  const [recovery] = await events(h.ctx, "join_token.bound_keypair.recovery");
  assertEquals(recovery.status, { success: true });
  assertEquals(recovery.recovery_count, 1);
  assertEquals(recovery.token_name, "t1");
  assertEquals(recovery.connection, { remote_addr: "127.0.0.1" });
  assertEquals((await events(h.ctx, "join_token.bound_keypair.rotation")).length, 0);
  const [join] = await events(h.ctx, "bot.join");
  assertEquals(join.bot_instance_id, result.bot_instance_id);
  assertEquals(join.generation, 1);
  assertEquals(join.recovery_mode, "standard");

  // The secret is single use: a second client with it hits case E and cannot prove the key.
  const before = await getToken(h.ctx, "t1");
  const thief = new TestBot(h, "t1");
  await rejectsCode(() => thief.join({ secret: "s3cret-value" }), "CHALLENGE_FAILED");
  assertEquals(await getToken(h.ctx, "t1"), before);
});

withHarness(
  "A: wrong, missing and late registration secrets are refused without change",
  async (h) => {
    await putBot(h.ctx, "b1");
    await putToken(h.ctx, "t1", { botName: "b1", registrationSecret: "right" });
    const before = await getToken(h.ctx, "t1");
    const bot = new TestBot(h, "t1");
    await rejectsCode(
      () => bot.join({ secret: "wrong" }),
      "REGISTRATION_SECRET_INVALID",
      "a valid registration secret is required",
    );
    await rejectsCode(() => bot.join(), "REGISTRATION_SECRET_INVALID");
    await putToken(h.ctx, "t2", {
      botName: "b1",
      registrationSecret: "right",
      mustRegisterBefore: new Date(h.clock.t.getTime() - 1000).toISOString(),
    });
    await rejectsCode(
      () => new TestBot(h, "t2").join({ secret: "right" }),
      "REGISTRATION_SECRET_INVALID",
    );
    assertEquals(await getToken(h.ctx, "t1"), before);
    assertEquals(bot.keys.keys.length, 0, "no rotation was requested");
    const failures = await events(h.ctx, "join_token.bound_keypair.recovery");
    assertEquals(failures.length, 3);
    assert(failures.every((e) => e.status.success === false && e.public_key === ""));
    const reasons = failures.map((e) => e.status.error).sort();
    assertEquals(reasons, [
      "no registration secret was provided",
      "registration secret comparison failed",
      "the registration deadline (must_register_before) has passed",
    ]);
    // Failures of one token, code and source in one minute share a row.
    const failed = await events(h.ctx, "join.failed");
    assertEquals(failed.map((e) => [e.token_name, e.count]).sort(), [["t1", 2], ["t2", 1]]);
    assertEquals(failed[0].error, "REGISTRATION_SECRET_INVALID");
  },
);

withHarness(
  "A: preregistered ES256 key onboards; its exact text becomes the bound key",
  async (h) => {
    await putBot(h.ctx, "b1");
    const keys = new MemoryKeyStore();
    const pub = await keys.add("ES256");
    await putToken(h.ctx, "t1", { botName: "b1", initialPublicKey: pub + " comment" });
    const bot = new TestBot(h, "t1", keys);
    const result = await bot.join();
    assertEquals((await tokenStatus(h.ctx, "t1")).bound_public_key, pub + " comment");
    assert(await sameKey(result.bound_keypair.public_key, pub));
    assertEquals(keys.keys.length, 1, "no rotation");
    // Refresh with the ES256 key also works.
    const again = await bot.join();
    assertEquals(again.generation, 2);
  },
);

withHarness("A: preregistered key, solution by another key fails CHALLENGE_FAILED", async (h) => {
  await putBot(h.ctx, "b1");
  const owner = new MemoryKeyStore();
  const pub = await owner.add();
  await putToken(h.ctx, "t1", { botName: "b1", initialPublicKey: pub });
  // A key store that answers every challenge with an unrelated key.
  const other = (await generateKeyPair("EdDSA")).privateKey;
  const impostor = {
    findPrivateKey: () => Promise.resolve(other),
    generateRotationKey: () => owner.add(),
  };
  await rejectsCode(
    () =>
      joinBoundKeypair({
        baseUrl: h.baseUrl,
        tokenName: "t1",
        subjectKey: { ...owner.keys[0].keyPair },
        ttlSeconds: 3600,
        keyStore: impostor,
      }),
    "CHALLENGE_FAILED",
  );
  assertEquals((await tokenStatus(h.ctx, "t1")).recovery_count, 0);
  const [ev] = await events(h.ctx, "join_token.bound_keypair.recovery");
  assertEquals(ev.status.success, false);
});

withHarness("A: no recoveries left, or neither key nor secret", async (h) => {
  await putBot(h.ctx, "b1");
  const keys = new MemoryKeyStore();
  await putToken(h.ctx, "t0", { botName: "b1", initialPublicKey: await keys.add(), limit: 0 });
  await rejectsCode(
    () => new TestBot(h, "t0", keys).join(),
    "NO_RECOVERIES_REMAINING",
    "no recovery attempts remaining",
  );
  await putToken(h.ctx, "t1", { botName: "b1", status: { recovery_count: 0 } });
  await rejectsCode(
    () => new TestBot(h, "t1").join({ secret: "x" }),
    "BAD_PARAMETER",
    "either an initial public key or registration secret is required",
  );
  // Relaxed mode ignores the limit even for the first join.
  await putToken(h.ctx, "t2", {
    botName: "b1",
    initialPublicKey: keys.keys[0].publicKey,
    limit: 0,
    mode: "relaxed",
  });
  await new TestBot(h, "t2", keys).join();
  assertEquals((await tokenStatus(h.ctx, "t2")).recovery_count, 1);
});

withHarness(
  "B and C: existing credentials on an unbound token; bound key without instance",
  async (h) => {
    await putBot(h.ctx, "b1");
    await putToken(h.ctx, "t1", { botName: "b1", registrationSecret: "s" });
    const bot = new TestBot(h, "t1");
    bot.identity = await botSigner(h.ctx, "b1", { generation: 1 });
    await rejectsCode(
      () => bot.join({ secret: "s" }),
      "ONBOARDING_WITH_CREDENTIALS",
      "cannot perform first bound keypair join with existing credentials",
    );
    const keys = new MemoryKeyStore();
    await putToken(h.ctx, "t2", {
      botName: "b1",
      status: { recovery_count: 1, bound_public_key: await keys.add() },
    });
    await rejectsCode(
      () => new TestBot(h, "t2", keys).join(),
      "TOKEN_STATE_CORRUPT",
      "bad backend state, please recreate the join token",
    );
    // A certificate of another bot may not refresh this token.
    const other = await putToken(h.ctx, "t3", {
      botName: "b1",
      initialPublicKey: keys.keys[0].publicKey,
    });
    assert(other);
    const foreign = new TestBot(h, "t3", keys);
    foreign.identity = await botSigner(h.ctx, "someone-else", { generation: 1 });
    await rejectsCode(() => foreign.join(), "ACCESS_DENIED");
  },
);

withHarness(
  "issued certificates: subject, roles, EKU, lifetime cap and SSH principals",
  async (h) => {
    await putBot(h.ctx, "b1", {
      roles: ["ops", "missing-role"],
      traits: [{ name: "logins", values: ["trait-user", "root"] }],
      max_session_ttl: "2h",
    });
    await h.ctx.backend.commit({
      checks: [],
      mutations: [{
        type: "set",
        key: ["resources", "role", "ops"],
        value: {
          kind: "role",
          version: "v7",
          metadata: { name: "ops" },
          spec: {
            allow: { logins: ["ubuntu", "{{internal.logins}}"] },
            deny: { logins: ["root"] },
          },
        },
      }],
    });
    const bot = new TestBot(h, "t1");
    const pub = await bot.keys.add();
    await putToken(h.ctx, "t1", { botName: "b1", initialPublicKey: pub });
    const result = await bot.join({ ttl: 30 * 24 * 3600 });
    const cert = parseCertificate(certificatesFromPem(result.certificates.tls_cert)[0]);
    const attr = (oid: string) => cert.subject.filter((a) => a.oid === oid).map((a) => a.value);
    assertEquals(attr("2.5.4.3"), ["bot-b1"]);
    assertEquals(attr("2.5.4.10"), ["bot-b1", "ops", "missing-role"]);
    assertEquals(attr("1.3.9999.2.18"), ["b1"]);
    assertEquals(attr("1.3.9999.2.20"), [result.bot_instance_id]);
    assertEquals(attr("1.3.9999.1.14"), ["1"]);
    assertEquals(attr("1.3.9999.2.21"), ["t1"]);
    assertEquals(cert.extKeyUsage, ["clientAuth"]);
    const now = h.clock.t.getTime();
    assertEquals(cert.notBefore.getTime(), now - 60_000);
    assertEquals(cert.notAfter.getTime(), now + 2 * 3600_000, "capped by max_session_ttl");
    assertEquals(result.expires, new Date(now + 2 * 3600_000).toISOString());
    assertEquals(result.certificates.tls_ca_certs, [h.ctx.cas.user.tls!.certPem]);
    assertEquals(result.certificates.ssh_ca_keys, [h.ctx.cas.user.ssh!.publicKey]);

    const { parseSshCertificate, verifySshCertificate } = await import("../../src/pki/mod.ts");
    const ssh = await parseSshCertificate(result.certificates.ssh_cert);
    assert(await verifySshCertificate(ssh));
    assertEquals(ssh.keyId, "bot-b1");
    assertEquals(ssh.certType, "user");
    assertEquals(ssh.principals.sort(), ["trait-user", "ubuntu"]);
    assertEquals(ssh.validBefore.getTime(), now + 2 * 3600_000);
    assert("permit-pty" in ssh.extensions);
  },
);

withHarness(
  "bad input: malformed JSON, wrong types, big bodies, wrong content type, unknown token",
  async (h) => {
    const before = (await h.ctx.backend.list([])).length;
    let r = await postRaw(h, JOIN_BEGIN_PATH, "{not json");
    assertEquals([r.status, (r.json.error as { code: string }).code], [400, "BAD_REQUEST"]);
    r = await postRaw(h, JOIN_BEGIN_PATH, JSON.stringify({ token_name: 5 }));
    assertEquals([r.status, (r.json.error as { code: string }).code], [400, "BAD_PARAMETER"]);
    assertEquals((r.json.error as { details: { path: string } }).details.path, "token_name");
    r = await postRaw(h, JOIN_BEGIN_PATH, JSON.stringify({ token_name: "x".repeat(70_000) }));
    assertEquals([r.status, (r.json.error as { code: string }).code], [413, "PAYLOAD_TOO_LARGE"]);
    r = await postRaw(h, JOIN_BEGIN_PATH, "{}", { "content-type": "text/plain" });
    assertEquals([r.status, (r.json.error as { code: string }).code], [400, "BAD_REQUEST"]);
    r = await postRaw(
      h,
      "/v1/join/bound-keypair/continue",
      JSON.stringify({
        session: "AAAA",
        answer: { type: "challenge_solution", solution: "x" },
      }),
    );
    assertEquals([r.status, (r.json.error as { code: string }).code], [400, "SESSION_INVALID"]);
    assertEquals(
      (await h.ctx.backend.list([])).length,
      before + 3,
      "only a join.failed row, its type index entry and the source's row counter",
    );

    const kp = await generateKeyPair("ES256");
    const other = await generateKeyPair("ES256");
    const begin = {
      token_name: "nope",
      public_tls_key: await exportSpkiPem(kp.publicKey),
      public_ssh_key: await toAuthorizedKey(kp.publicKey),
    };
    r = await postRaw(h, JOIN_BEGIN_PATH, JSON.stringify(begin));
    assertEquals([r.status, (r.json.error as { code: string }).code], [403, "ACCESS_DENIED"]);
    const failed = (await events(h.ctx, "join.failed")).find((e) => e.token_name === "nope");
    assertEquals(failed?.error, "ACCESS_DENIED");
    r = await postRaw(
      h,
      JOIN_BEGIN_PATH,
      JSON.stringify({
        ...begin,
        public_ssh_key: await toAuthorizedKey(other.publicKey),
      }),
    );
    assertEquals((r.json.error as { details: { path: string } }).details.path, "public_ssh_key");
    r = await postRaw(h, JOIN_BEGIN_PATH, JSON.stringify({ ...begin, public_tls_key: "garbage" }));
    assertEquals((r.json.error as { details: { path: string } }).details.path, "public_tls_key");
    r = await postRaw(h, JOIN_BEGIN_PATH, JSON.stringify({ ...begin, unknown_field: 1 }));
    assertEquals((r.json.error as { code: string }).code, "BAD_PARAMETER");
    // A garbage Authorization header is a 401, never a silent downgrade.
    r = await postRaw(h, JOIN_BEGIN_PATH, JSON.stringify(begin), {
      "content-type": "application/json",
      authorization: "Keybound not.a.jws",
    });
    assertEquals([r.status, (r.json.error as { code: string }).code], [401, "UNAUTHENTICATED"]);
  },
);
