import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { KeyboundError } from "../../src/errors.ts";
import { Hono } from "hono";
import { challengeHash, signRequest } from "../../src/protocol/signed_request.ts";
import {
  adminSubject,
  botSubject,
  browserSubject,
  outputSubject,
  SUBJECT_OIDS,
} from "../../src/protocol/subject.ts";
import type { AppEnv } from "../../src/server/hono_env.ts";
import { resourceKey, seenRequestKey } from "../../src/server/keys.ts";
import { locksChangedMutation } from "../../src/server/locks.ts";
import { requireAdmin, requireBot, verifySignedRequest } from "../../src/server/request_auth.ts";
import type { ServerContext, TlsCaKey } from "../../src/server/context.ts";
import { rotateCa } from "../../src/server/rotation/rotate.ts";
import {
  rememberIssuedCertificate,
  VerifiedCertificateCache,
  verifyClientCertificate,
} from "../../src/server/verified_certs.ts";
import { generateKeyPair } from "../../src/crypto/keys.ts";
import { parseCertificate } from "../../src/pki/mod.ts";
import type { NameAttribute } from "../../src/pki/x509.ts";
import { issueUserCertificates } from "../../src/server/join/certs.ts";
import type { Bot } from "../../src/resources/schemas.ts";
import { fromBase64Url, utf8 } from "../../src/util/encoding.ts";
import { adminSigner, botSigner, clientSigner, newCluster } from "./_cluster_fixture.ts";

const PATH = "/v1/resources/token/example";
const BODY = utf8('{"mode":"create"}');

function verify(
  ctx: ServerContext,
  authorization: string | null,
  over: { method?: string; path?: string; body?: Uint8Array } = {},
  recordJti = true,
) {
  return verifySignedRequest(ctx, {
    method: over.method ?? "PUT",
    path: over.path ?? PATH,
    body: over.body ?? BODY,
    authorization,
  }, { recordJti });
}

async function rejectsWith(p: () => Promise<unknown>, code: string, includes: string) {
  const err = await assertRejects(p, KeyboundError, includes);
  assertEquals(err.code, code);
}

Deno.test("a valid admin request verifies and yields the admin identity", async () => {
  const { ctx } = await newCluster();
  const auth = await signRequest(await adminSigner(ctx), { method: "put", path: PATH, body: BODY });
  const id = await verify(ctx, auth);
  assert(id);
  assertEquals(id.username, "admin");
  assertEquals(id.roles, ["@admin"]);
  assertEquals(id.botName, undefined);
  assertEquals(id.chash, undefined);
});

Deno.test("no Authorization header yields null; a foreign scheme is rejected", async () => {
  const { ctx } = await newCluster();
  assertEquals(await verify(ctx, null), null);
  await rejectsWith(() => verify(ctx, "Bearer abc"), "UNAUTHENTICATED", "Keybound <compact JWS>");
  await rejectsWith(() => verify(ctx, "Keybound not-a-jws"), "UNAUTHENTICATED", "protected header");
});

Deno.test("method, path and body are bound by the signature", async () => {
  const { ctx } = await newCluster();
  const signer = await adminSigner(ctx);
  const sign = () => signRequest(signer, { method: "PUT", path: PATH, body: BODY });
  await rejectsWith(
    async () => verify(ctx, await sign(), { method: "POST" }),
    "UNAUTHENTICATED",
    "htm",
  );
  await rejectsWith(
    async () => verify(ctx, await sign(), { path: "/v1/resources/token/other" }),
    "UNAUTHENTICATED",
    "htu",
  );
  await rejectsWith(
    async () => verify(ctx, await sign(), { body: utf8('{"mode":"upsert"}') }),
    "UNAUTHENTICATED",
    "bsh",
  );
  // A query string is not part of htu.
  const q = await signRequest(signer, { method: "GET", path: "/v1/audit?limit=3" });
  assert(await verify(ctx, q, { method: "GET", path: "/v1/audit", body: new Uint8Array() }));
});

Deno.test("iat more than 60 s away from the server's clock is rejected", async () => {
  const { ctx } = await newCluster();
  const signer = await adminSigner(ctx);
  for (const offset of [-61_000, 61_000]) {
    const auth = await signRequest(signer, {
      method: "PUT",
      path: PATH,
      body: BODY,
      now: new Date(ctx.now().getTime() + offset),
    });
    await rejectsWith(() => verify(ctx, auth), "UNAUTHENTICATED", "iat");
  }
  const ok = await signRequest(signer, {
    method: "PUT",
    path: PATH,
    body: BODY,
    now: new Date(ctx.now().getTime() - 50_000),
  });
  assert(await verify(ctx, ok));
});

Deno.test("a replayed jti is rejected; join continue requests (recordJti false) are not recorded", async () => {
  const { ctx } = await newCluster();
  const auth = await signRequest(await adminSigner(ctx), { method: "PUT", path: PATH, body: BODY });
  assert(await verify(ctx, auth, {}, false));
  assert(await verify(ctx, auth, {}, false));
  assert(await verify(ctx, auth));
  await rejectsWith(() => verify(ctx, auth), "UNAUTHENTICATED", "replayed");
});

Deno.test("concurrent copies of one request: exactly one is accepted", async () => {
  const { ctx } = await newCluster();
  const auth = await signRequest(await adminSigner(ctx), { method: "PUT", path: PATH, body: BODY });
  const results = await Promise.allSettled(Array.from({ length: 8 }, () => verify(ctx, auth)));
  assertEquals(results.filter((r) => r.status === "fulfilled").length, 1);
});

Deno.test("an expired jti marker still in the backend counts as absent", async () => {
  const { ctx } = await newCluster();
  const auth = await signRequest(await adminSigner(ctx), { method: "PUT", path: PATH, body: BODY });
  const payload = JSON.parse(new TextDecoder().decode(fromBase64Url(auth.split(".")[1])));
  await ctx.backend.commit({
    checks: [],
    mutations: [{
      type: "set",
      key: seenRequestKey(payload.jti),
      value: true,
      expiresAt: ctx.now().getTime() - 1,
    }],
  });
  assert(await verify(ctx, auth));
  await rejectsWith(() => verify(ctx, auth), "UNAUTHENTICATED", "replayed");
});

Deno.test("a certificate from another cluster's CA is rejected", async () => {
  const { ctx } = await newCluster();
  const other = await newCluster();
  const auth = await signRequest(await adminSigner(other.ctx), {
    method: "PUT",
    path: PATH,
    body: BODY,
  });
  await rejectsWith(() => verify(ctx, auth), "UNAUTHENTICATED", "user CA");
  // The own cluster's host CA is not a client CA either.
  const hostIssued = await clientSigner(ctx, adminSubject(), { ca: ctx.cas.host });
  const auth2 = await signRequest(hostIssued, { method: "PUT", path: PATH, body: BODY });
  await rejectsWith(() => verify(ctx, auth2), "UNAUTHENTICATED", "user CA");
});

Deno.test("an expired certificate is rejected", async () => {
  const cluster = await newCluster();
  const { ctx } = cluster;
  const signer = await clientSigner(ctx, adminSubject(), {
    notAfter: new Date(ctx.now().getTime() + 10_000),
  });
  const later = new Date(ctx.now().getTime() + 20_000);
  cluster.setNow(later);
  const auth = await signRequest(signer, { method: "PUT", path: PATH, body: BODY, now: later });
  await rejectsWith(() => verify(ctx, auth), "UNAUTHENTICATED", "expired");
});

Deno.test("a tampered signature or one by another key is rejected", async () => {
  const { ctx } = await newCluster();
  const signer = await adminSigner(ctx);
  const auth = await signRequest(signer, { method: "PUT", path: PATH, body: BODY });
  const [h, p, s] = auth.slice("Keybound ".length).split(".");
  const flipped = s[5] === "A" ? "B" : "A";
  const badSig = `Keybound ${h}.${p}.${s.slice(0, 5)}${flipped}${s.slice(6)}`;
  await rejectsWith(() => verify(ctx, badSig), "UNAUTHENTICATED", "signature");
  // A signature by a key other than the certificate's.
  const other = await signRequest({ ...signer, privateKey: (await adminSigner(ctx)).privateKey }, {
    method: "PUT",
    path: PATH,
    body: BODY,
  });
  const [, p2, s2] = other.slice("Keybound ".length).split(".");
  await rejectsWith(() => verify(ctx, `Keybound ${h}.${p2}.${s2}`), "UNAUTHENTICATED", "signature");
});

Deno.test("bot certificates yield bot name, instance, generation, join token and chash", async () => {
  const { ctx } = await newCluster();
  const signer = await botSigner(ctx, "example", {
    instance: "11111111-2222-4333-8444-555555555555",
    generation: 7,
    alg: "EdDSA",
  });
  const chash = await challengeHash('{"nonce":"x"}');
  const auth = await signRequest(signer, {
    method: "POST",
    path: "/v1/join/bound-keypair/continue",
    body: BODY,
    chash,
  });
  const id = await verify(
    ctx,
    auth,
    { method: "POST", path: "/v1/join/bound-keypair/continue" },
    false,
  );
  assert(id);
  assertEquals(id.username, "bot-example");
  assertEquals(id.roles, ["bot-example"]);
  assertEquals(id.botName, "example");
  assertEquals(id.botInstanceId, "11111111-2222-4333-8444-555555555555");
  assertEquals(id.generation, 7);
  assertEquals(id.joinToken, "example-token");
  assertEquals(id.chash, chash);
  assertEquals(id.publicKey.algorithm.name, "Ed25519");
});

async function putLock(
  ctx: ServerContext,
  name: string,
  target: Record<string, string>,
  expires?: string,
) {
  await ctx.backend.commit({
    checks: [],
    mutations: [{
      type: "set",
      key: resourceKey("lock", name),
      value: {
        kind: "lock",
        version: "v2",
        metadata: { name },
        spec: { target, message: "compromised host", ...(expires ? { expires } : {}) },
      },
    }, locksChangedMutation(ctx)],
  });
}

Deno.test("locks on the bot user or bot instance reject with LOCKED; expired locks do not", async () => {
  const { ctx } = await newCluster();
  const signer = await botSigner(ctx, "example", { instance: "i-1" });
  const sign = () => signRequest(signer, { method: "PUT", path: PATH, body: BODY });
  await putLock(
    ctx,
    "old",
    { user: "bot-example" },
    new Date(ctx.now().getTime() - 1000).toISOString(),
  );
  await putLock(ctx, "other", { user: "bot-other" });
  assert(await verify(ctx, await sign()));

  await putLock(ctx, "inst", { bot_instance_id: "i-1" });
  await rejectsWith(async () => verify(ctx, await sign()), "LOCKED", 'bot instance "i-1"');
  await putLock(ctx, "inst", { user: "bot-example" });
  await rejectsWith(async () => verify(ctx, await sign()), "LOCKED", "compromised host");
});

Deno.test("a lock matches only when every target field it sets matches; token locks block the bot's requests", async () => {
  const { ctx } = await newCluster();
  const signer = await botSigner(ctx, "example", { instance: "i-1" });
  const sign = () => signRequest(signer, { method: "PUT", path: PATH, body: BODY });
  // Both fields set, only one matches: not this bot.
  await putLock(ctx, "both", { user: "bot-example", bot_instance_id: "i-2" });
  await putLock(ctx, "tok-other", { join_token: "other-token" });
  assert(await verify(ctx, await sign()));
  // The token this bot joined with (carried in its certificate).
  await putLock(ctx, "tok", { join_token: "example-token" });
  await rejectsWith(async () => verify(ctx, await sign()), "LOCKED", 'join token "example-token"');
});

function guardedApp(ctx: ServerContext) {
  const app = new Hono<AppEnv>();
  app.onError((err, c) => {
    const e = err as KeyboundError;
    return c.json(e.toJSON(), e.status as 401);
  });
  app.post(
    "/v1/admin-echo",
    requireAdmin(ctx),
    async (c) => c.json({ user: c.get("identity").username, body: await c.req.json() }),
  );
  app.post(
    "/v1/bot-echo",
    requireBot(ctx),
    async (c) => c.json({ bot: c.get("identity").botName, text: await c.req.text() }),
  );
  return app;
}

async function call(app: Hono<AppEnv>, path: string, auth: string | null, body: string) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (auth) headers.authorization = auth;
  const res = await app.request(path, { method: "POST", headers, body });
  return { status: res.status, json: await res.json() };
}

Deno.test("requireAdmin and requireBot: 401 without, 403 for the wrong identity, body readable after", async () => {
  const { ctx } = await newCluster();
  const app = guardedApp(ctx);
  const admin = await adminSigner(ctx);
  const bot = await botSigner(ctx);
  const body = '{"a":1}';
  const sign = (s: typeof admin, path: string) => signRequest(s, { method: "POST", path, body });

  assertEquals((await call(app, "/v1/admin-echo", null, body)).status, 401);
  assertEquals((await call(app, "/v1/bot-echo", null, body)).json.error.code, "UNAUTHENTICATED");

  const a = await call(app, "/v1/admin-echo", await sign(admin, "/v1/admin-echo"), body);
  assertEquals(a, { status: 200, json: { user: "admin", body: { a: 1 } } });
  const b = await call(app, "/v1/bot-echo", await sign(bot, "/v1/bot-echo"), body);
  assertEquals(b, { status: 200, json: { bot: "example", text: body } });

  const wrong1 = await call(app, "/v1/admin-echo", await sign(bot, "/v1/admin-echo"), body);
  assertEquals([wrong1.status, wrong1.json.error.code], [403, "ACCESS_DENIED"]);
  const wrong2 = await call(app, "/v1/bot-echo", await sign(admin, "/v1/bot-echo"), body);
  assertEquals([wrong2.status, wrong2.json.error.code], [403, "ACCESS_DENIED"]);
});

Deno.test("verified-certificate cache: hits, LRU bound, expiry, a hit only for a trusted CA key, no failures", async () => {
  const cluster = await newCluster();
  const { ctx } = cluster;
  const cache = new VerifiedCertificateCache(2);
  const now = ctx.now();
  const a = await botSigner(ctx, "a", { generation: 1 });
  const b = await botSigner(ctx, "b", { generation: 1 });
  const c = await botSigner(ctx, "c", { generation: 1 });
  const first = await verifyClientCertificate(ctx, a.certDer, now, "certificate", cache);
  assertEquals(first.identity.botName, "a");
  // A hit returns the remembered verification itself.
  assert(await verifyClientCertificate(ctx, a.certDer, now, "certificate", cache) === first);
  await verifyClientCertificate(ctx, b.certDer, now, "certificate", cache);
  // Least recently used is a (last touched before b), so c evicts a.
  await verifyClientCertificate(ctx, c.certDer, now, "certificate", cache);
  assertEquals(cache.size, 2);
  assert(await verifyClientCertificate(ctx, a.certDer, now, "certificate", cache) !== first);
  // Failures are not remembered.
  const other = await newCluster();
  const foreign = await botSigner(other.ctx, "a", { generation: 1 });
  const before = cache.size;
  await rejectsWith(
    () => verifyClientCertificate(ctx, foreign.certDer, now, "certificate", cache),
    "UNAUTHENTICATED",
    "user CA",
  );
  assertEquals(cache.size, before);
  // The entry names the CA key that verified it, and a hit counts only while that key is
  // trusted: the other cluster does not accept a's cached certificate.
  await rejectsWith(
    () => verifyClientCertificate(other.ctx, a.certDer, now, "certificate", cache),
    "UNAUTHENTICATED",
    "user CA",
  );
  // That lookup dropped a's entry (the next test): a's certificate verifies again, and after
  // notAfter the entry is gone and the certificate is refused as expired.
  await verifyClientCertificate(ctx, a.certDer, now, "certificate", cache);
  const late = new Date(now.getTime() + 2 * 3600_000);
  await rejectsWith(
    () => verifyClientCertificate(ctx, a.certDer, late, "certificate", cache),
    "UNAUTHENTICATED",
    "expired",
  );
});

Deno.test("verified-certificate cache: an entry of a key not trusted is dropped when looked up, not refreshed", async () => {
  const { ctx } = await newCluster();
  const other = await newCluster();
  const cache = new VerifiedCertificateCache(2);
  const now = ctx.now();
  const [a, b, c] = await Promise.all(["a", "b", "c"].map((n) => botSigner(ctx, n)));
  await verifyClientCertificate(ctx, a.certDer, now, "certificate", cache);
  const vb = await verifyClientCertificate(ctx, b.certDer, now, "certificate", cache);
  // To the other cluster a's entry names an untrusted key: refused, and the entry is gone.
  await rejectsWith(
    () => verifyClientCertificate(other.ctx, a.certDer, now, "certificate", cache),
    "UNAUTHENTICATED",
    "user CA",
  );
  assertEquals(cache.size, 1);
  // So c takes a's place, and b, used longer ago than that refused lookup, is still a hit.
  await verifyClientCertificate(ctx, c.certDer, now, "certificate", cache);
  assert(await verifyClientCertificate(ctx, b.certDer, now, "certificate", cache) === vb);
});

/**
 * Certificates the user CA's Ed25519 key `ed` may not sign, each with its
 * own key: what a signing bug could make it sign.
 */
async function ed25519Misuses(ctx: ServerContext, ed: TlsCaKey) {
  const join = botSubject({
    botName: "example",
    botInstanceId: "i",
    generation: 1,
    joinToken: "t",
  });
  return {
    admin: await clientSigner(ctx, adminSubject(), { issuer: ed, alg: "EdDSA" }),
    output: await clientSigner(ctx, outputSubject({ botName: "example", joinToken: "t" }), {
      issuer: ed,
      alg: "EdDSA",
    }),
    console: await clientSigner(ctx, browserSubject("b1"), { issuer: ed, alg: "EdDSA" }),
    p256SubjectKey: await botSigner(ctx, "example", { issuer: ed, alg: "ES256" }),
    joinWithUsage: await clientSigner(
      ctx,
      [...join, { oid: SUBJECT_OIDS.usage, value: "output" }],
      {
        issuer: ed,
        alg: "EdDSA",
      },
    ),
    joinWithBrowser: await clientSigner(
      ctx,
      [...join, { oid: SUBJECT_OIDS.browserId, value: "b" }],
      {
        issuer: ed,
        alg: "EdDSA",
      },
    ),
    // Any attribute botSubject does not write (an OU here), not only the two known today.
    joinWithOther: await clientSigner(ctx, [...join, { oid: "2.5.4.11", value: "x" }], {
      issuer: ed,
      alg: "EdDSA",
    }),
  };
}

Deno.test("the user CA's Ed25519 key is trusted for Ed25519 bots' join certificates only", async () => {
  const { ctx } = await newCluster();
  const ed = ctx.cas.user.tlsEd25519;
  assert(ed, "a new cluster's user CA has the Ed25519 X.509 key");
  const cache = new VerifiedCertificateCache();
  const now = ctx.now();
  const check = (der: Uint8Array) => verifyClientCertificate(ctx, der, now, "certificate", cache);
  // What a signing bug could make it sign: each refused as an untrusted issuer's, never cached.
  const wrong = await ed25519Misuses(ctx, ed);
  for (const s of Object.values(wrong)) {
    await rejectsWith(() => check(s.certDer), "UNAUTHENTICATED", "not issued by this cluster");
  }
  assertEquals(cache.size, 0);
  await rejectsWith(
    async () =>
      verify(ctx, await signRequest(wrong.admin, { method: "PUT", path: PATH, body: BODY })),
    "UNAUTHENTICATED",
    "user CA",
  );
  // The certificate a join makes for an Ed25519 bot is accepted, and remembered.
  const bot = await botSigner(ctx, "example", { issuer: ed, alg: "EdDSA" });
  const ok = await check(bot.certDer);
  assertEquals([ok.identity.botName, ok.identity.generation], ["example", 3]);
  assertEquals(cache.size, 1);
  // The same subjects from the P-256 key stay what they were.
  const admin = await check((await clientSigner(ctx, adminSubject(), { alg: "EdDSA" })).certDer);
  assertEquals(admin.identity.roles, ["@admin"]);
  assert(await check((await botSigner(ctx, "example", { alg: "ES256" })).certDer));
});

Deno.test("a dropped Ed25519 key: CA_KEY_DROPPED for its join certificates, the trusted key's refusal for the rest", async () => {
  const { ctx } = await newCluster();
  const ed = ctx.cas.user.tlsEd25519!;
  const wrong = await ed25519Misuses(ctx, ed);
  const bot = await botSigner(ctx, "example", { issuer: ed, alg: "EdDSA" });
  const cache = new VerifiedCertificateCache();
  const check = (der: Uint8Array) =>
    verifyClientCertificate(ctx, der, ctx.now(), "certificate", cache);
  // Warm: the join certificate is in the cache under the key that is about to be dropped.
  assert(await check(bot.certDer));
  for (const phase of ["init", "update_clients", "update_servers", "standby"] as const) {
    await rotateCa(ctx, "user", { mode: "manual", phase }, { user: "admin" });
  }
  assertEquals(ctx.cas.user.dropped.filter((d) => d.tlsEd25519).length, 1);
  assert(!ctx.cas.user.trustedTlsEd25519.some((k) => k.certPem === ed.certPem));

  // What the key may sign, and did: the bot must join again.
  await rejectsWith(() => check(bot.certDer), "CA_KEY_DROPPED", "a rotation dropped");
  await rejectsWith(
    async () => verify(ctx, await signRequest(bot, { method: "PUT", path: PATH, body: BODY })),
    "CA_KEY_DROPPED",
    "join again",
  );
  // What it may never sign: the same refusal as while it was trusted, whatever the subject.
  for (const [name, s] of Object.entries(wrong)) {
    const err = await assertRejects(() => check(s.certDer), KeyboundError);
    assertEquals([name, err.code], [name, "UNAUTHENTICATED"]);
    assertStringIncludes(err.message, "its Ed25519 key signs only Ed25519 bots' join certificates");
  }
  await rejectsWith(
    async () =>
      verify(ctx, await signRequest(wrong.admin, { method: "PUT", path: PATH, body: BODY })),
    "UNAUTHENTICATED",
    "not issued by this cluster",
  );
  assertEquals(cache.size, 0);
});

Deno.test("every subject botSubject writes is a join's to the Ed25519 key", async () => {
  const { ctx } = await newCluster();
  const ed = ctx.cas.user.tlsEd25519;
  const long = "a" + "b".repeat(252);
  const id = "6f1c2f0e-1111-4222-8333-444455556666";
  for (
    const b of [
      { botName: "@a_b.c:d+e-f", botInstanceId: id, generation: 0, joinToken: "t:+@" },
      { botName: long, botInstanceId: id, generation: Number.MAX_SAFE_INTEGER, joinToken: long },
      {
        botName: "r",
        botInstanceId: id,
        generation: 5,
        joinToken: "t",
        roles: ["bot-r", "@admin"],
      },
      { botName: "r", botInstanceId: id, generation: 5, joinToken: "t", roles: [] },
    ]
  ) {
    const s = await clientSigner(ctx, botSubject(b), { issuer: ed, alg: "EdDSA" });
    const v = await verifyClientCertificate(
      ctx,
      s.certDer,
      ctx.now(),
      "certificate",
      new VerifiedCertificateCache(),
    );
    assertEquals([v.identity.botName, v.identity.generation], [b.botName, b.generation]);
  }
});

/** What `rememberIssuedCertificate` is told of the certificate `der` it has just signed. */
async function issued(der: Uint8Array) {
  const c = parseCertificate(der);
  return {
    der,
    subject: c.subject,
    publicKey: await c.publicKey(),
    serialHex: c.serialHex,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
  };
}

Deno.test("the entry the signer makes obeys the Ed25519 key's limit too: no entry, refused", async () => {
  const { ctx } = await newCluster();
  const ed = ctx.cas.user.tlsEd25519;
  assert(ed);
  const cache = new VerifiedCertificateCache();
  const now = ctx.now();
  const sign = (subject: NameAttribute[], alg: "EdDSA" | "ES256") =>
    clientSigner(ctx, subject, { issuer: ed, alg });
  const wrong = [
    await sign(adminSubject(), "EdDSA"),
    await sign(outputSubject({ botName: "example", joinToken: "t" }), "EdDSA"),
    await botSigner(ctx, "example", { issuer: ed, alg: "ES256" }),
  ];
  for (const s of wrong) {
    await rememberIssuedCertificate(ed, await issued(s.certDer), cache);
    assertEquals(cache.size, 0);
    await rejectsWith(
      () => verifyClientCertificate(ctx, s.certDer, now, "certificate", cache),
      "UNAUTHENTICATED",
      "not issued by this cluster",
    );
  }
  // A join certificate of an Ed25519 bot is remembered, and the next request hits it.
  const bot = await botSigner(ctx, "example", { issuer: ed, alg: "EdDSA" });
  await rememberIssuedCertificate(ed, await issued(bot.certDer), cache);
  assertEquals(cache.size, 1);
  const hit = await verifyClientCertificate(ctx, bot.certDer, now, "certificate", cache);
  assertEquals(hit.identity.generation, 3);
});

Deno.test("the Ed25519 key signs nothing but an Ed25519 bot's join certificate", async () => {
  const { ctx } = await newCluster();
  const ed = ctx.cas.user.tlsEd25519;
  assert(ed);
  const signer = { key: ed, trusted: ctx.cas.user.trustedTlsEd25519 };
  const bot: Bot = {
    kind: "bot",
    version: "v1",
    metadata: { name: "example" },
    spec: { roles: [], traits: [] },
  };
  const ssh = await generateKeyPair("EdDSA");
  const request = async (subject: NameAttribute[], alg: "EdDSA" | "ES256") => ({
    bot,
    subject,
    tlsPublicKey: (await generateKeyPair(alg)).publicKey,
    sshPublicKey: ssh.publicKey,
    ttlSeconds: 600,
  });
  const join = botSubject({
    botName: "example",
    botInstanceId: "i",
    generation: 1,
    joinToken: "t",
  });
  for (
    const [subject, alg] of [
      [adminSubject(), "EdDSA"],
      [outputSubject({ botName: "example" }), "EdDSA"],
      [join, "ES256"],
    ] as const
  ) {
    const r = await request(subject, alg);
    await rejectsWith(() => issueUserCertificates(ctx, r, signer), "INTERNAL", "Ed25519");
    // The P-256 key signs them.
    assert((await issueUserCertificates(ctx, r)).tls_cert);
  }
  const ok = await issueUserCertificates(ctx, await request(join, "EdDSA"), signer);
  assertEquals(ok.tls_ca_certs, signer.trusted.map((k) => k.certPem));
});

Deno.test("verified-certificate cache: one lookup per certificate, whichever user CA key signed it", async () => {
  const { ctx } = await newCluster();
  const lookups: string[] = [];
  class Counting extends VerifiedCertificateCache {
    override get(key: string, now: Date) {
      lookups.push(key);
      return super.get(key, now);
    }
  }
  const cache = new Counting();
  const now = ctx.now();
  const ed = ctx.cas.user.tlsEd25519;
  for (
    const s of [
      await botSigner(ctx, "p", { alg: "ES256" }),
      await botSigner(ctx, "e", { alg: "EdDSA", issuer: ed }),
    ]
  ) {
    const first = await verifyClientCertificate(ctx, s.certDer, now, "certificate", cache);
    lookups.length = 0;
    assert(await verifyClientCertificate(ctx, s.certDer, now, "certificate", cache) === first);
    assertEquals(lookups.length, 1);
  }
});
