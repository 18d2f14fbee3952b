/**
 * The rotation state machine and its storage, in-process on real Deno KV
 * files and real HTTP on loopback: records from before rotation still load,
 * a stale instance cannot commit a join signed by a key a rotation dropped
 * (it reloads and signs again), concurrent phase changes apply once, and a
 * bot whose join state a dropped `bound_keypair` key signed keeps joining.
 *
 * @module
 */
import {
  certificatesFromPem,
  parseCertificate,
  verifyCertificateSignature,
} from "../../src/pki/mod.ts";
import { bootstrapCluster } from "../../src/server/bootstrap.ts";
import { CA_REVISION_KEY, caKey } from "../../src/server/keys.ts";
import { rotateCa } from "../../src/server/rotation/rotate.ts";
import { refreshCas } from "../../src/server/rotation/cache.ts";
import { servingKeyChanged } from "../../src/server/identity.ts";
import { enrollBrowser, mintEnrollment } from "../../src/server/web/enrollment.ts";
import { exportSpki, generateKeyPair } from "../../src/crypto/keys.ts";
import { fromBase64, toBase64 } from "../../src/util/encoding.ts";
import type { StoredCa } from "../../src/server/rotation/schema.ts";
import { MemoryBackend } from "../../src/storage/memory.ts";
import type { JsonValue } from "../../src/storage/backend.ts";
import { silentLogger } from "../../src/util/log.ts";
import { assert, assertEquals } from "../_assert.ts";
import {
  attachHarness,
  events,
  onboardedBot,
  putBot,
  startHarness,
} from "../server/_join_fixture.ts";
import { caPin } from "../../src/server/bootstrap.ts";
import { createApp } from "../../src/server/app.ts";
import { type RequestSigner, signRequest } from "../../src/protocol/signed_request.ts";
import { adminSigner, newCluster } from "../server/_cluster_fixture.ts";

const admin = { user: "admin" };
const manual = (phase: "init" | "update_clients" | "update_servers" | "standby" | "rollback") => ({
  mode: "manual" as const,
  phase,
});

Deno.test("rotation: a CA record written before rotation loads unchanged; spiffe is added", async () => {
  const backend = new MemoryBackend();
  const first = await bootstrapCluster(backend, {
    clusterName: "legacy.example",
    log: silentLogger,
    version: "test",
  });
  // Rewrite every record in the old shape, and forget what rotation added.
  for (const type of ["user", "host", "bound_keypair", "jwt"] as const) {
    const s = (await backend.get(caKey(type)))!.value as unknown as StoredCa;
    const legacy = {
      type,
      ...(s.active.tls ? { tls: s.active.tls } : {}),
      ...(s.active.ssh ? { ssh: s.active.ssh } : {}),
      ...(s.active.jwt ? { jwt: [s.active.jwt] } : {}),
    };
    await backend.commit({
      checks: [],
      mutations: [{ type: "set", key: caKey(type), value: legacy as unknown as JsonValue }],
    });
  }
  await backend.commit({
    checks: [],
    mutations: [{ type: "delete", key: caKey("spiffe") }, { type: "delete", key: CA_REVISION_KEY }],
  });
  const again = await bootstrapCluster(backend, {
    clusterName: "legacy.example",
    log: silentLogger,
    version: "test",
  });
  assertEquals(await caPin(again.cas.host), await caPin(first.cas.host));
  assertEquals(again.cas.user.tls!.certPem, first.cas.user.tls!.certPem);
  assertEquals(again.cas.boundKeypair.jwt![0].kid, first.cas.boundKeypair.jwt![0].kid);
  assertEquals(again.cas.user.rotation.phase, "standby");
  assert(again.cas.spiffe.tls !== undefined, "spiffe CA created");
  // A rotation writes the record in the new shape.
  await rotateCa(again, "user", manual("init"), admin);
  assertEquals(((await backend.get(caKey("user")))!.value as { format: number }).format, 2);
});

Deno.test("rotation: a stale instance cannot commit a join signed by a dropped key", async () => {
  const a = await startHarness();
  const b = await attachHarness(a); // never re-checks its CAs on its own: no watcher
  try {
    const u0 = b.ctx.cas.user.tls!.certPem;
    for (const phase of ["init", "update_clients", "update_servers", "standby"] as const) {
      await rotateCa(a.ctx, "user", manual(phase), admin);
    }
    const u1 = a.ctx.cas.user.tls!;
    assert(u1.certPem !== u0);
    assertEquals(b.ctx.cas.user.tls!.certPem, u0, "b still holds the dropped key");
    await putBot(a.ctx, "b1");
    const bot = await onboardedBot(b, "t1", { botName: "b1" });
    const cert = parseCertificate(certificatesFromPem(bot.last!.certificates.tls_cert)[0]);
    assert(await verifyCertificateSignature(cert, u1.keyPair.publicKey), "signed by the new key");
    assertEquals(bot.last!.certificates.tls_ca_certs, [u1.certPem]);
    assertEquals(bot.last!.trust_bundle!.user.tls_ca_certs, [u1.certPem]);
    assertEquals(b.ctx.cas.user.tls!.certPem, u1.certPem, "b reloaded");
  } finally {
    await b.stop();
    await a.close();
  }
});

Deno.test("rotation: a stale instance signs a console enrollment with the current user CA key", async () => {
  const a = await startHarness();
  const b = await attachHarness(a); // never re-checks its CAs on its own: no watcher
  try {
    const minted = await mintEnrollment(a.ctx, {
      ttlSeconds: 600,
      sessionTtlSeconds: 3600,
      actor: { user: "admin" },
    });
    for (const phase of ["init", "update_clients", "update_servers", "standby"] as const) {
      await rotateCa(a.ctx, "user", manual(phase), admin);
    }
    const u1 = a.ctx.cas.user.tls!;
    assert(b.ctx.cas.user.tls!.certPem !== u1.certPem, "b still holds the dropped key");
    const browserKey = await generateKeyPair("ES256");
    const enrolled = await enrollBrowser(b.ctx, {
      code: minted.code,
      public_key: toBase64(await exportSpki(browserKey.publicKey)),
    });
    const cert = parseCertificate(fromBase64(enrolled.cert));
    assert(await verifyCertificateSignature(cert, u1.keyPair.publicKey), "signed by the new key");
  } finally {
    await b.stop();
    await a.close();
  }
});

Deno.test("rotation: of concurrent identical phase changes one applies and is audited once", async () => {
  const a = await startHarness();
  const b = await attachHarness(a);
  try {
    const outcomes = await Promise.allSettled(
      [a, b, a, b].map((h) => rotateCa(h.ctx, "host", manual("init"), admin)),
    );
    const ok = outcomes.filter((o) => o.status === "fulfilled").length;
    const codes = outcomes.flatMap((o) => o.status === "rejected" ? [o.reason.code] : []);
    assertEquals(ok, 1, codes.join(","));
    assertEquals(codes, ["ROTATION_IN_PROGRESS", "ROTATION_IN_PROGRESS", "ROTATION_IN_PROGRESS"]);
    assertEquals((await events(a.ctx, "ca.rotation")).length, 1);
  } finally {
    await b.stop();
    await a.close();
  }
});

Deno.test("rotation: a join state signed by a dropped bound_keypair key still joins, re-signed", async () => {
  const h = await startHarness();
  try {
    await putBot(h.ctx, "b1");
    const bot = await onboardedBot(h, "t1", { botName: "b1", limit: 5 });
    const oldKid = h.ctx.cas.boundKeypair.jwt![0].kid;
    const sleeper = await onboardedBot(h, "t2", { botName: "b1", limit: 5 });
    for (const phase of ["init", "update_clients", "update_servers", "standby"] as const) {
      await rotateCa(h.ctx, "bound_keypair", manual(phase), admin);
      await bot.join();
    }
    const newKid = h.ctx.cas.boundKeypair.jwt![0].kid;
    assert(newKid !== oldKid);
    assertEquals(h.ctx.cas.boundKeypair.jwt!.length, 1);
    const kidOf = (jws: string) =>
      JSON.parse(atob(jws.split(".")[0].replace(/-/g, "+").replace(/_/g, "/"))).kid;
    assertEquals(kidOf(bot.joinState!), newKid);
    assertEquals(kidOf(sleeper.joinState!), oldKid);
    await sleeper.join(); // a refresh with the old join state
    assertEquals(kidOf(sleeper.joinState!), newKid, "re-issued under the new key");
    assertEquals(
      (await events(h.ctx, "join_token.bound_keypair.join_state_verification_failed")).length,
      0,
    );
  } finally {
    await h.close();
  }
});

Deno.test("rotation: a signed call with a dropped key's certificate gets CA_KEY_DROPPED", async () => {
  const { ctx } = await newCluster("dropped.example");
  const app = createApp(ctx);
  const oldAdmin = await adminSigner(ctx);
  const call = async (signer: RequestSigner) => {
    const auth = await signRequest(signer, { method: "GET", path: "/v1/status" });
    const res = await app.fetch(
      new Request("http://auth.test/v1/status", { headers: { authorization: auth } }),
    );
    return { status: res.status, body: await res.json() };
  };
  assertEquals((await call(oldAdmin)).status, 200);
  for (const phase of ["init", "update_clients", "update_servers"] as const) {
    await rotateCa(ctx, "user", manual(phase), admin);
    assertEquals((await call(oldAdmin)).status, 200, `old admin certificate in ${phase}`);
  }
  await rotateCa(ctx, "user", manual("standby"), admin);
  const refused = await call(oldAdmin);
  assertEquals([refused.status, refused.body.error.code], [401, "CA_KEY_DROPPED"]);
  assertEquals((await call(await adminSigner(ctx))).status, 200, "a new-key certificate works");
  // A certificate from a key the cluster never had stays a plain UNAUTHENTICATED.
  const stranger = await newCluster("dropped.example");
  const other = await call(await adminSigner(stranger.ctx));
  assertEquals([other.status, other.body.error.code], [401, "UNAUTHENTICATED"]);
});

Deno.test("rotation: a manual step takes an automatic rotation over; its schedule is gone", async () => {
  const { ctx } = await newCluster("takeover.example");
  const started = await rotateCa(ctx, "host", { mode: "auto", grace_period_s: 3600 }, admin);
  assertEquals([started.mode, started.schedule !== undefined], ["auto", true]);
  const moved = await rotateCa(ctx, "host", manual("update_clients"), admin);
  assertEquals([moved.phase, moved.mode, moved.schedule], ["update_clients", "manual", undefined]);
  const back = await rotateCa(ctx, "host", manual("rollback"), admin);
  assertEquals([back.phase, back.mode, back.schedule], ["rollback", "manual", undefined]);
});

Deno.test("rotation: status pins are SPKI pins; the key that serves TLS carries ca_pin", async () => {
  const { ctx } = await newCluster("pins.example");
  await rotateCa(ctx, "host", manual("init"), admin);
  const s = await rotateCa(ctx, "host", manual("update_clients"), admin);
  const serving = s.keys.find((k) => k.serves_tls)!;
  assertEquals(serving.role, "trusted", "update_clients: the old key still serves");
  assertEquals(serving.tls_pin, await caPin(ctx.cas.host));
  assertEquals(s.keys[0].tls_pin, await caPin({ ...ctx.cas.host, serverTls: undefined }));
});

Deno.test("rotation: the serving key changes only at update_servers and at a rollback from it, as another instance reloads it", async () => {
  const backend = new MemoryBackend();
  const options = { clusterName: "serving.example", log: silentLogger, version: "test" };
  const a = await bootstrapCluster(backend, options);
  const b = await bootstrapCluster(backend, options);
  const swaps: string[] = [];
  const phases = [
    ...(["init", "update_clients", "update_servers", "standby"] as const),
    ...(["init", "update_clients", "update_servers", "rollback", "standby"] as const),
  ];
  for (const phase of phases) {
    const before = b.cas;
    await rotateCa(a, "host", manual(phase), admin);
    await refreshCas(b, 0);
    // A reload builds new objects even for keys that did not change.
    assert(b.cas.host !== before.host, `B reloaded the host CA at ${phase}`);
    if (servingKeyChanged(before, b.cas)) swaps.push(phase);
  }
  assertEquals(swaps, ["update_servers", "update_servers", "rollback"]);
});
