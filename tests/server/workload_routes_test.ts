import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { assert, assertEquals } from "../_assert.ts";
import { exportSpkiPem, generateKeyPair } from "../../src/crypto/keys.ts";
import { toAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import {
  certificatesFromPem,
  parseCertificate,
  parseSshCertificate,
  verifyCertificateSignature,
  verifySshCertificate,
} from "../../src/pki/mod.ts";
import { validateResource } from "../../src/resources/validate.ts";
import { fromBase64 } from "../../src/util/encoding.ts";
import { newWorkloadCluster, put } from "./_workload_fixture.ts";
import { botSigner, clientSigner } from "./_cluster_fixture.ts";

Deno.test("ssh-host-cert: a host certificate from the host CA with the requested principals", async () => {
  const { ctx, call } = await newWorkloadCluster();
  const key = await generateKeyPair("ES256");
  const r = await call("/v1/bot/ssh-host-cert", {
    public_key: await toAuthorizedKey(key.publicKey),
    principals: ["host.example.com", "127.0.0.1"],
    ttl_seconds: 7200,
  });
  assertEquals(r.status, 200);
  const cert = await parseSshCertificate(r.json.ssh_cert as string);
  assertEquals(cert.certType, "host");
  assertEquals(cert.principals, ["host.example.com", "127.0.0.1"]);
  assertEquals(cert.extensions, {});
  assertEquals(cert.criticalOptions, {});
  assert(await verifySshCertificate(cert));
  const signer = await toAuthorizedKey(cert.signatureKey);
  assertEquals(signer, ctx.cas.host.ssh!.publicKey, "signed by the host CA");
  assertEquals(r.json.user_ca_keys, [ctx.cas.user.ssh!.publicKey]);
  const now = ctx.now().getTime();
  assert(cert.validAfter.getTime() < now, "backdated");
  assertEquals(cert.validBefore.getTime() / 1000, Math.floor(now / 1000) + 7200);
});

Deno.test("ssh-host-cert: invalid or missing principals are refused with the field path", async () => {
  const { call } = await newWorkloadCluster();
  const pub = await toAuthorizedKey((await generateKeyPair("EdDSA")).publicKey);
  const bad = await call("/v1/bot/ssh-host-cert", {
    public_key: pub,
    principals: ["ok.example.com", "not a host"],
  });
  assertEquals(bad.status, 400);
  assertEquals((bad.json.error as { details: { path: string } }).details.path, "principals[1]");
  const empty = await call("/v1/bot/ssh-host-cert", { public_key: pub, principals: [] });
  assertEquals(empty.status, 400);
  assertEquals((empty.json.error as { details: { path: string } }).details.path, "principals");
});

Deno.test("ssh-host-cert: a bot whose roles lack the host_cert rule is denied", async () => {
  const { ctx, call } = await newWorkloadCluster();
  await put(ctx, {
    kind: "role",
    version: "v7",
    metadata: { name: "workload" },
    spec: { allow: { logins: ["root"] } },
  });
  const r = await call("/v1/bot/ssh-host-cert", {
    public_key: await toAuthorizedKey((await generateKeyPair("EdDSA")).publicKey),
    principals: ["host.example.com"],
  });
  assertEquals(r.status, 403);
  assertEquals((r.json.error as { code: string }).code, "ACCESS_DENIED");
});

Deno.test("svid/x509: a SPIFFE X509-SVID from a dedicated CA, absent from the user CA's trust", async () => {
  const { ctx, call, app } = await newWorkloadCluster("Example.COM");
  const key = await generateKeyPair("ES256");
  const r = await call("/v1/bot/svid/x509", {
    selector: { name: "example" },
    public_key: await exportSpkiPem(key.publicKey),
  });
  assertEquals(r.status, 200);
  assertEquals(r.json.spiffe_id, "spiffe://example.com/bot/example");
  const svid = parseCertificate(certificatesFromPem(r.json.svid as string)[0]);
  assertEquals(svid.subject, []);
  assertEquals(svid.uris, ["spiffe://example.com/bot/example"]);
  assertEquals(svid.isCA, false);
  assertEquals(svid.keyUsage, ["digitalSignature"]);
  assertEquals(svid.extKeyUsage.sort(), ["clientAuth", "serverAuth"]);
  assert(svid.subjectKeyId && svid.authorityKeyId, "SKI and AKI present");
  const [bundleDer] = certificatesFromPem((r.json.bundle as string[])[0]);
  const bundleCert = parseCertificate(bundleDer);
  assert(bundleCert.isCA);
  assert(await verifyCertificateSignature(svid, await bundleCert.publicKey()));
  assert(
    !(await verifyCertificateSignature(svid, ctx.cas.user.tls!.keyPair.publicKey)),
    "not signed by the user CA",
  );
  // The public bundle serves the same CA.
  const bundle = await (await app.fetch(new Request("http://auth.test/v1/spiffe/bundle"))).json();
  const x509 = bundle.keys.find((k: { use: string }) => k.use === "x509-svid");
  assertEquals(fromBase64(x509.x5c[0]), bundleDer);
  assert(bundle.keys.some((k: { use: string; kid?: string }) => k.use === "jwt-svid" && k.kid));
});

Deno.test("svid/x509: the SVID's CA is stable across requests and auth processes", async () => {
  const { ctx, call } = await newWorkloadCluster();
  const body = async () => ({
    selector: { name: "example" },
    public_key: await exportSpkiPem((await generateKeyPair("EdDSA")).publicKey),
  });
  const a = await call("/v1/bot/svid/x509", await body());
  const b = await call("/v1/bot/svid/x509", await body());
  assertEquals(a.json.bundle, b.json.bundle);
  // A second process on the same backend (a fresh context) loads the same CA.
  const { bootstrapCluster } = await import("../../src/server/bootstrap.ts");
  const { silentLogger } = await import("../../src/util/log.ts");
  const { spiffeCa } = await import("../../src/server/workload/spiffe_ca.ts");
  const other = await bootstrapCluster(ctx.backend, {
    clusterName: ctx.clusterName,
    log: silentLogger,
    version: "test",
  });
  assertEquals([(await spiffeCa(other)).certPem], a.json.bundle);
});

Deno.test("svid: workload identity access follows the roles' workload_identity_labels", async () => {
  const { ctx, call } = await newWorkloadCluster();
  await put(ctx, {
    kind: "workload_identity",
    version: "v1",
    metadata: { name: "prod", labels: { env: "prod" } },
    spec: { spiffe: { id: "/svc/prod" } },
  });
  const r = await call("/v1/bot/svid/jwt", { selector: { name: "prod" }, audiences: ["a"] });
  assertEquals(r.status, 403);
  const missing = await call("/v1/bot/svid/jwt", { selector: { name: "nope" }, audiences: ["a"] });
  assertEquals(missing.status, 404);
});

Deno.test("svid: a bot name that is not a valid SPIFFE segment is refused, not mangled", async () => {
  const { ctx, call } = await newWorkloadCluster();
  await put(ctx, {
    kind: "bot",
    version: "v1",
    metadata: { name: "odd@bot" },
    spec: { roles: ["workload"], traits: [] },
  });
  const r = await call(
    "/v1/bot/svid/jwt",
    { selector: { name: "example" }, audiences: ["a"] },
    await botSigner(ctx, "odd@bot"),
  );
  assertEquals(r.status, 400);
  assert(String((r.json.error as { message: string }).message).includes("odd@bot"));
});

Deno.test("svid/jwt: ES256 JWT-SVID verifiable with the public JWKS", async () => {
  const { ctx, call, app } = await newWorkloadCluster();
  const r = await call("/v1/bot/svid/jwt", {
    selector: { name: "example" },
    audiences: ["https://svc.example.com"],
    ttl_seconds: 600,
  });
  assertEquals(r.status, 200);
  const jwksRes = await app.fetch(new Request("http://auth.test/.well-known/jwks.json"));
  const jwks = await jwksRes.json();
  assertEquals(jwks.keys[0].kid, ctx.cas.jwt.jwt![0].kid);
  assert(!("d" in jwks.keys[0]), "no private members");
  const jwt = r.json.jwt as string;
  assertEquals(decodeProtectedHeader(jwt).kid, ctx.cas.jwt.jwt![0].kid);
  const { payload } = await jwtVerify(jwt, createLocalJWKSet(jwks), {
    audience: "https://svc.example.com",
    issuer: `https://${ctx.clusterName}`,
    subject: `spiffe://${ctx.clusterName}/bot/example`,
    currentDate: ctx.now(),
  });
  assertEquals(payload.exp! - payload.iat!, 600);
  assert(typeof payload.jti === "string");
  const bad = await call("/v1/bot/svid/jwt", { selector: { name: "example" }, audiences: [] });
  assertEquals(bad.status, 400);
  assertEquals((bad.json.error as { details: { path: string } }).details.path, "audiences");
});

Deno.test("workload endpoints refuse admin and SVID-less callers", async () => {
  const { ctx, call, app } = await newWorkloadCluster();
  const { adminSigner } = await import("./_cluster_fixture.ts");
  const asAdmin = await call(
    "/v1/bot/svid/jwt",
    { selector: { name: "example" }, audiences: ["a"] },
    await adminSigner(ctx),
  );
  assertEquals(asAdmin.status, 403);
  const unsigned = await app.fetch(
    new Request("http://auth.test/v1/bot/svid/jwt", { method: "POST", body: "{}" }),
  );
  assertEquals(unsigned.status, 401);
  // A certificate from another cluster's user CA is not a bot of this one.
  const other = await newWorkloadCluster("other.example.com");
  const foreign = await clientSigner(other.ctx, [{ oid: "2.5.4.3", value: "bot-example" }]);
  const r = await call(
    "/v1/bot/svid/jwt",
    { selector: { name: "example" }, audiences: ["a"] },
    foreign,
  );
  assertEquals(r.status, 401);
});

Deno.test("workload_identity resources: template variables and SPIFFE paths are validated", () => {
  const base = { kind: "workload_identity", version: "v1", metadata: { name: "w" } };
  const ok = validateResource({ ...base, spec: { spiffe: { id: "/bot/{{user.bot_name}}/x" } } });
  assert(ok.ok);
  for (
    const [id, fragment] of [
      ["/bot/{{ user.nope }}", "unsupported template variable"],
      ["bot/x", 'must start with "/"'],
      ["/bot//x", "empty segments"],
      ["/bot/../x", '".."'],
      ["/bot/a b", "may contain only"],
    ]
  ) {
    const r = validateResource({ ...base, spec: { spiffe: { id } } });
    assert(!r.ok, id);
    if (!r.ok) {
      assertEquals(r.issue.path, ["spec", "spiffe", "id"]);
      assert(r.issue.message.includes(fragment), `${id}: ${r.issue.message}`);
    }
  }
});
