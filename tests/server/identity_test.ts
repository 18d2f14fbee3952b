import { assert, assertEquals } from "../_assert.ts";
import {
  certificatesFromPem,
  parseCertificate,
  verifyCertificateSignature,
} from "../../src/pki/mod.ts";
import {
  ADMIN_IDENTITY_RENEW_BEFORE_MS,
  isAdminIdentityCurrent,
  issueAdminIdentityFile,
  issueServerCertificate,
  serverCertificateNames,
} from "../../src/server/identity.ts";
import { newCluster } from "./_cluster_fixture.ts";

Deno.test("the server certificate is a serverAuth leaf of the host CA with the given SANs", async () => {
  const { ctx } = await newCluster("leaf.example");
  const issued = await issueServerCertificate(ctx, {
    dnsNames: ["localhost", "auth.example.com"],
    ipAddresses: ["127.0.0.1", "::1"],
  });
  const cert = parseCertificate(certificatesFromPem(issued.certPem)[0]);
  assertEquals(cert.isCA, false);
  assertEquals(cert.extKeyUsage, ["serverAuth"]);
  assertEquals(cert.dnsNames, ["localhost", "auth.example.com"]);
  assertEquals(cert.ipAddresses.length, 2);
  assert(await verifyCertificateSignature(cert, ctx.cas.host.tls!.keyPair.publicKey));
  assert(!(await verifyCertificateSignature(cert, ctx.cas.user.tls!.keyPair.publicKey)));
  assert(issued.keyPem.includes("BEGIN PRIVATE KEY"));
});

Deno.test("server certificate names: listen host, public hosts, loopback and wildcard", () => {
  assertEquals(serverCertificateNames({ listenHost: "127.0.0.1", publicHosts: [] }), {
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1", "::1"],
  });
  assertEquals(
    serverCertificateNames({
      listenHost: "10.0.0.5",
      publicHosts: ["Auth.Example.com", "10.0.0.5"],
    }),
    { dnsNames: ["auth.example.com"], ipAddresses: ["10.0.0.5"] },
  );
  assertEquals(
    serverCertificateNames({ listenHost: "0.0.0.0", publicHosts: [], hostname: "box" }),
    { dnsNames: ["localhost", "box"], ipAddresses: ["127.0.0.1", "::1"] },
  );
});

Deno.test("an admin identity is current only for its own cluster and until 30 days before expiry", async () => {
  const cluster = await newCluster();
  const text = await issueAdminIdentityFile(cluster.ctx, {
    ttlMs: ADMIN_IDENTITY_RENEW_BEFORE_MS + 3600_000,
  });
  assert(await isAdminIdentityCurrent(cluster.ctx, text));
  const other = await newCluster();
  assert(!(await isAdminIdentityCurrent(other.ctx, text)));
  assert(!(await isAdminIdentityCurrent(cluster.ctx, "garbage")));
  cluster.setNow(new Date(cluster.ctx.now().getTime() + 2 * 3600_000));
  assert(!(await isAdminIdentityCurrent(cluster.ctx, text)));
});
