/**
 * Review R19: after a user CA rotation a fleet behind one address meets
 * `CA_KEY_DROPPED` together. A refusal of a live certificate whose request
 * was signed with its own key is a genuine bot of this cluster: its first
 * few answers per certificate are not charged to the source's bucket. The
 * same answer to a copied certificate signed with another key, to an
 * expired certificate, or past the per-certificate allowance is charged, so
 * the path stays bounded even for whoever holds an old certificate and key;
 * and a refusal stores nothing. A certificate that never was an identity
 * (an output certificate, a subject without a common name) gets the trusted
 * path's refusal from a dropped key too, charged (review-ca S1). Whoever
 * holds the dropped key itself can mint certificates without end: the free
 * answers have a ceiling per source too (review-ca N5).
 *
 * @module
 */
import { generateKeyPair } from "../../src/crypto/keys.ts";
import { parseCertificate } from "../../src/pki/mod.ts";
import { type RequestSigner, signRequest } from "../../src/protocol/signed_request.ts";
import { createApp } from "../../src/server/app.ts";
import { rotateCa } from "../../src/server/rotation/rotate.ts";
import type { AtomicOperation } from "../../src/storage/backend.ts";
import { assertEquals } from "../_assert.ts";
import { bootstrapCluster } from "../../src/server/bootstrap.ts";
import { silentLogger } from "../../src/util/log.ts";
import { DenoKvBackend } from "../../runtime-adapters/deno/kv_backend.ts";
import { serveApp } from "../../runtime-adapters/deno/serve.ts";
import { adminSubject, outputSubject, SUBJECT_OIDS } from "../../src/protocol/subject.ts";
import { adminSigner, botSigner, clientSigner, newCluster } from "./_cluster_fixture.ts";

const admin = { user: "admin" };

Deno.test("rate limit: CA_KEY_DROPPED is free a few times for a live certificate's holder, charged otherwise", async () => {
  const { ctx, setNow } = await newCluster("dropped-limit.example");
  // Ten bots' certificates (admin identities: each its own key), all from the old key.
  const fleet: RequestSigner[] = [];
  for (let i = 0; i < 10; i++) fleet.push(await adminSigner(ctx));
  // From the user CA's Ed25519 key: an Ed25519 bot's join certificate (what it signs), and an
  // admin certificate (what it may never sign).
  const ed = ctx.cas.user.tlsEd25519!;
  const edBot = await botSigner(ctx, "example", { issuer: ed, alg: "EdDSA" });
  const edAdmin = await clientSigner(ctx, adminSubject(), { issuer: ed, alg: "EdDSA" });
  // From the P-256 key, which signs any subject: an output certificate and a subject without a
  // common name, neither of which the trusted path takes as an identity.
  const output = await clientSigner(ctx, outputSubject({ botName: "example", joinToken: "t" }));
  const noCn = await clientSigner(ctx, [{ oid: SUBJECT_OIDS.organization, value: "@admin" }]);
  // The whole answer (status, code, message), from an app without a limit worth reaching.
  const answerOf = async (signer: RequestSigner, at: Date) => {
    const authorization = await signRequest(signer, { method: "GET", path: "/v1/status", now: at });
    const res = await createApp(ctx).fetch(
      new Request("http://auth.test/v1/status", { headers: { authorization } }),
      { remoteAddr: "192.0.2.1:4000" },
    );
    return [res.status, (await res.json()).error];
  };
  const trustedOutput = await answerOf(output, new Date());
  const trustedNoCn = await answerOf(noCn, new Date());
  assertEquals(trustedOutput[0], 403);
  assertEquals(trustedNoCn[0], 401);
  for (const phase of ["init", "update_clients", "update_servers", "standby"] as const) {
    await rotateCa(ctx, "user", { mode: "manual", phase }, admin);
  }
  let commits = 0;
  const commit = ctx.backend.commit.bind(ctx.backend);
  ctx.backend.commit = (r: AtomicOperation) => (commits++, commit(r));
  const app = createApp(ctx, { rateLimit: { perSecond: 0.001, burst: 3 } });
  let now = new Date();
  const send = async (source: string, signer: RequestSigner) => {
    const authorization = await signRequest(signer, { method: "GET", path: "/v1/status", now });
    const res = await app.fetch(
      new Request("http://auth.test/v1/status", { headers: { authorization } }),
      { remoteAddr: `${source}:4000` },
    );
    const body = await res.json();
    return res.status === 429 ? "429" : body.error?.code ?? String(res.status);
  };
  const series = async (source: string, signer: RequestSigner, n: number) => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(await send(source, signer));
    return out;
  };
  const DROPPED = "CA_KEY_DROPPED";

  // The fleet behind one address: one answer each, never a 429.
  const answers: string[] = [];
  for (const bot of fleet) answers.push(await send("198.51.100.1", bot));
  assertEquals(answers, Array(10).fill(DROPPED));
  assertEquals(commits, 0, "a refusal stores nothing");

  // One certificate, again and again: five free answers, then charged like any failure.
  assertEquals(await series("198.51.100.2", fleet[0], 10), [
    ...Array(4).fill(DROPPED), // fleet[0] used one of its five above
    ...Array(3).fill(DROPPED), // the source's burst
    ...Array(3).fill("429"),
  ]);

  // The dropped certificate with a signature by another key: charged.
  const copied = {
    certDer: fleet[1].certDer,
    privateKey: (await generateKeyPair("ES256")).privateKey,
  };
  assertEquals(await series("198.51.100.3", copied, 5), [...Array(3).fill(DROPPED), "429", "429"]);

  // The dropped Ed25519 key's join certificate is a live bot's: free like the P-256 ones.
  assertEquals(await series("198.51.100.5", edBot, 5), Array(5).fill(DROPPED));
  // What that key could never have signed is no bot of this cluster: refused as an untrusted
  // issuer's certificate and charged like any failed credential.
  assertEquals(await series("198.51.100.6", edAdmin, 5), [
    ...Array(3).fill("UNAUTHENTICATED"),
    "429",
    "429",
  ]);

  // What the trusted path refuses whatever key signed it gets that refusal from a dropped key,
  // charged: an output certificate is no identity, nor a subject without a common name.
  const output403 = Array(3).fill("ACCESS_DENIED");
  assertEquals(await series("198.51.100.7", output, 5), [...output403, "429", "429"]);
  assertEquals(await series("198.51.100.8", noCn, 5), [
    ...Array(3).fill("UNAUTHENTICATED"),
    "429",
    "429",
  ]);
  assertEquals(await answerOf(output, now), trustedOutput, "the trusted path's answer");
  assertEquals(await answerOf(noCn, now), trustedNoCn, "the trusted path's answer");

  // An expired certificate, signed with its own key: charged.
  now = new Date(parseCertificate(fleet[2].certDer).notAfter.getTime() + 86_400_000);
  setNow(now);
  assertEquals(await series("198.51.100.4", fleet[2], 5), [
    ...Array(3).fill(DROPPED),
    "429",
    "429",
  ]);

  assertEquals(commits, 0);
});

Deno.test("rate limit: fresh certificates from a dropped key get free CA_KEY_DROPPED answers up to a ceiling per source", async () => {
  const dir = await Deno.makeTempDir();
  const backend = await DenoKvBackend.open(`${dir}/keybound.kv`);
  const ctx = await bootstrapCluster(backend, {
    clusterName: "dropped-ceiling.example",
    log: silentLogger,
    version: "0.0.0-test",
  });
  // Certificates minted with the user CA's key before it is dropped: what its holder can make
  // after the rotation without end, each signed with its own key, so each a "live bot".
  const minted: RequestSigner[] = [];
  for (let i = 0; i < 40; i++) minted.push(await adminSigner(ctx));
  for (const phase of ["init", "update_clients", "update_servers", "standby"] as const) {
    await rotateCa(ctx, "user", { mode: "manual", phase }, admin);
  }
  // Burst 3: the source's ceiling of free answers is ten bursts, 30.
  const app = createApp(ctx, { rateLimit: { perSecond: 0.001, burst: 3 } });
  const server = serveApp(app, { hostname: "127.0.0.1", port: 0 });
  try {
    const answers: string[] = [];
    for (const signer of minted) {
      const authorization = await signRequest(signer, { method: "GET", path: "/v1/status" });
      const res = await fetch(`${server.url}/v1/status`, { headers: { authorization } });
      const body = await res.json();
      answers.push(res.status === 429 ? "429" : body.error?.code);
    }
    assertEquals(answers, [
      ...Array(30).fill("CA_KEY_DROPPED"), // free: one each, up to the source's ceiling
      ...Array(3).fill("CA_KEY_DROPPED"), // charged: the source's burst
      ...Array(7).fill("429"),
    ]);
  } finally {
    await server.shutdown();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rate limit: an answer the source's ceiling charges leaves the certificate's own allowance whole", async () => {
  const { ctx } = await newCluster("dropped-both.example");
  const minted: RequestSigner[] = [];
  for (let i = 0; i < 31; i++) minted.push(await adminSigner(ctx));
  for (const phase of ["init", "update_clients", "update_servers", "standby"] as const) {
    await rotateCa(ctx, "user", { mode: "manual", phase }, admin);
  }
  // Burst 3: each source's ceiling is 30 free answers; a certificate's allowance is 5.
  const app = createApp(ctx, { rateLimit: { perSecond: 0.001, burst: 3 } });
  const answer = async (signer: RequestSigner, remoteAddr: string) => {
    const authorization = await signRequest(signer, { method: "GET", path: "/v1/status" });
    const res = await app.fetch(
      new Request("http://auth.test/v1/status", { headers: { authorization } }),
      { remoteAddr },
    );
    const body = await res.json();
    return res.status === 429 ? "429" : body.error?.code;
  };
  // Source A spends its ceiling on 30 certificates, then `last` is charged there three times.
  for (const signer of minted.slice(0, 30)) await answer(signer, "192.0.2.10:1");
  const last = minted[30];
  const atA: string[] = [];
  for (let i = 0; i < 4; i++) atA.push(await answer(last, "192.0.2.10:1"));
  assertEquals(atA, [...Array(3).fill("CA_KEY_DROPPED"), "429"], "charged at A");
  // From source B, `last` still has its 5 free answers, then B's burst of 3 is charged.
  const atB: string[] = [];
  for (let i = 0; i < 9; i++) atB.push(await answer(last, "198.51.100.10:1"));
  assertEquals(atB, [...Array(8).fill("CA_KEY_DROPPED"), "429"], "the certificate's allowance");
});
