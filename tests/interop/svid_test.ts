/**
 * SPIFFE interop: the `workload-identity-x509` output's SVID checked with
 * OpenSSL against `svid_bundle.pem`, and the `workload-identity-jwt`
 * output's JWT-SVID verified with jose against the JWKS fetched over HTTP
 * from the auth service.
 */
import { createRemoteJWKSet, decodeJwt, errors as joseErrors, jwtVerify } from "jose";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import {
  addBot,
  addWorkloadIdentity,
  type Cluster,
  read,
  run,
  runTbotOnce,
  startCluster,
} from "./_interop_fixture.ts";
import { ignoreWithout } from "../_tools.ts";

const CLUSTER = "spiffe.interop.example.com";
const SPIFFE_ID = `spiffe://${CLUSTER}/bot/workload`;

Deno.test({
  name: "spiffe: X.509 SVID verifies with OpenSSL; JWT-SVID verifies with jose against the JWKS",
  // Outside CI a machine without the tools skips; in CI (which installs them) they must run.
  ignore: ignoreWithout("interop svid test", "openssl"),
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "keybound-svid-" });
    const cluster: Cluster = await startCluster(CLUSTER);
    try {
      const secret = await addBot(cluster.ctx, "workload", { workloadLabels: { env: ["dev"] } });
      await addWorkloadIdentity(cluster.ctx, "svc");
      await runTbotOnce(
        cluster,
        "workload",
        secret,
        [
          "  - type: workload-identity-x509",
          `    destination: {type: directory, path: ${dir}/x509}`,
          "    selector: {name: svc}",
          "  - type: workload-identity-jwt",
          "    name: jwt",
          `    destination: {type: directory, path: ${dir}/jwt}`,
          "    selector: {name: svc}",
          "    audiences: [https://api.example.com, spiffe://other.example.com/svc]",
          "    credential_ttl: 10m",
          "    renewal_interval: 5m",
        ].join("\n"),
      );
      const svid = `${dir}/x509/svid.pem`;
      const bundle = `${dir}/x509/svid_bundle.pem`;

      await t.step(
        "openssl verify: the SVID chains to svid_bundle.pem, for client and server use",
        async () => {
          for (const purpose of ["sslclient", "sslserver"]) {
            const r = await run("openssl", [
              "verify",
              "-purpose",
              purpose,
              "-CAfile",
              bundle,
              svid,
            ]);
            assertEquals(r.code, 0, r.stdout + r.stderr);
            assertEquals(r.stdout.trim(), `${svid}: OK`);
          }
          // The bundle is the SPIFFE CA, not the user CA that signs bot identities.
          const userCa = `${dir}/user-ca.pem`;
          await Deno.writeTextFile(userCa, cluster.ctx.cas.user.tls!.certPem);
          const wrong = await run("openssl", ["verify", "-CAfile", userCa, svid]);
          assert(wrong.code !== 0, "the SVID must not chain to the user CA");
        },
      );

      await t.step(
        "openssl x509: the SVID carries exactly the SPIFFE ID and SVID extensions",
        async () => {
          const r = await run("openssl", ["x509", "-noout", "-text", "-in", svid]);
          assertEquals(r.code, 0, r.stderr);
          assertStringIncludes(
            r.stdout,
            `X509v3 Subject Alternative Name: critical\n                URI:${SPIFFE_ID}\n`,
          );
          assertStringIncludes(r.stdout, "CA:FALSE");
          assertStringIncludes(
            r.stdout,
            "X509v3 Key Usage: critical\n                Digital Signature\n",
          );
          assertStringIncludes(
            r.stdout,
            "TLS Web Server Authentication, TLS Web Client Authentication",
          );
          // The key file is PKCS#8 and belongs to the certificate.
          assertStringIncludes(read(`${dir}/x509/svid_key.pem`), "-----BEGIN PRIVATE KEY-----");
          const fromKey = await run("openssl", [
            "pkey",
            "-pubout",
            "-in",
            `${dir}/x509/svid_key.pem`,
          ]);
          const fromCert = await run("openssl", ["x509", "-pubkey", "-noout", "-in", svid]);
          assertEquals(fromKey.stdout, fromCert.stdout);
        },
      );

      const jwt = read(`${dir}/jwt/jwt_svid`);
      const jwks = createRemoteJWKSet(new URL(`${cluster.url}/.well-known/jwks.json`));

      await t.step(
        "jose: the JWT-SVID verifies against the JWKS over HTTP with aud, sub and expiry",
        async () => {
          const { payload, protectedHeader } = await jwtVerify(jwt, jwks, {
            audience: "https://api.example.com",
            issuer: `https://${CLUSTER}`,
            algorithms: ["ES256"],
          });
          assertEquals(protectedHeader.alg, "ES256");
          assertEquals(protectedHeader.typ, "JWT");
          assertEquals(payload.sub, SPIFFE_ID);
          assertEquals(payload.aud, ["https://api.example.com", "spiffe://other.example.com/svc"]);
          // The output's own credential_ttl (10m), not the bot's (1h).
          assertEquals(payload.exp! - payload.iat!, 600);
          assert(payload.exp! * 1000 > Date.now(), "not expired");
        },
      );

      await t.step(
        "jose: a token presented to another audience or after expiry is refused",
        async () => {
          await assertRejects(
            () => jwtVerify(jwt, jwks, { audience: "https://not-me.example.com" }),
            joseErrors.JWTClaimValidationFailed,
          );
          const exp = decodeJwt(jwt).exp!;
          await assertRejects(
            () => jwtVerify(jwt, jwks, { currentDate: new Date((exp + 1) * 1000) }),
            joseErrors.JWTExpired,
          );
          // A signature from another cluster's JWT CA does not verify with this JWKS.
          const other = await startCluster("elsewhere.example.com");
          try {
            const otherJwks = createRemoteJWKSet(new URL(`${other.url}/.well-known/jwks.json`));
            await assertRejects(() => jwtVerify(jwt, otherJwks), joseErrors.JWKSNoMatchingKey);
          } finally {
            await other.stop();
          }
        },
      );
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
