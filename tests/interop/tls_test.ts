/**
 * OpenSSL interop for the `identity` output's X.509 files: `openssl verify`,
 * the extensions `openssl x509 -text` shows, and mutual TLS against
 * `openssl s_server -Verify` on loopback.
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { certificatesFromPem, parseCertificate } from "../../src/pki/mod.ts";
import { issueServerCertificate } from "../../src/server/identity.ts";
import {
  addBot,
  type Cluster,
  Daemon,
  freePort,
  read,
  run,
  runTbotOnce,
  startCluster,
} from "./_interop_fixture.ts";
import { ignoreWithout } from "../_tools.ts";

function identityService(dir: string): string {
  return ["  - type: identity", `    destination: {type: directory, path: ${dir}}`].join("\n");
}

/** Hex of an extension's value line in `openssl x509 -text` output, e.g. the SKI. */
function extensionValue(text: string, name: string): string {
  const lines = text.split("\n");
  const i = lines.findIndex((l) => l.trim().startsWith(name));
  assert(i >= 0, `${name} missing:\n${text}`);
  return lines[i + 1].trim();
}

/**
 * One mTLS exchange: `s_server -Verify` trusting `trustedCas` (the service's
 * view of the cluster) and `s_client` presenting `cert`/`key`. Returns the
 * client's result and the server's log.
 */
async function mtls(
  server: { cert: string; key: string; ca: string },
  trustedCas: string,
  client: { cert: string; key: string },
) {
  const port = freePort();
  const s = new Daemon("openssl", [
    "s_server",
    "-accept",
    `127.0.0.1:${port}`,
    "-naccept",
    "1",
    "-www",
    "-cert",
    server.cert,
    "-key",
    server.key,
    "-CAfile",
    trustedCas,
    "-Verify",
    "1",
    "-verify_return_error",
  ]);
  try {
    await s.waitFor(/^ACCEPT$/);
    const c = await run("openssl", [
      "s_client",
      "-quiet",
      "-ign_eof",
      "-connect",
      `127.0.0.1:${port}`,
      "-cert",
      client.cert,
      "-key",
      client.key,
      "-CAfile",
      server.ca,
      "-verify_ip",
      "127.0.0.1",
      "-verify_return_error",
    ], { input: "GET / HTTP/1.0\r\n\r\n" });
    await s.exited();
    return { client: c, serverLog: s.log };
  } finally {
    await s.stop();
  }
}

Deno.test({
  name:
    "openssl: the identity output's certificate verifies, has the right extensions, and does mTLS",
  // Outside CI a machine without the tools skips; in CI (which installs them) they must run.
  ignore: ignoreWithout("interop tls test", "openssl"),
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "keybound-tls-" });
    const cluster: Cluster = await startCluster("tls.interop.example.com");
    const other: Cluster = await startCluster("other-tls.interop.example.com");
    try {
      const secret = await addBot(cluster.ctx, "client", { logins: ["root"] });
      await runTbotOnce(cluster, "client", secret, identityService(`${dir}/id`));
      const foreignSecret = await addBot(other.ctx, "client", { logins: ["root"] });
      await runTbotOnce(other, "client", foreignSecret, identityService(`${dir}/foreign`));
      const tlscert = `${dir}/id/tlscert`;
      const tlscacerts = `${dir}/id/tlscacerts`;

      await t.step(
        "openssl verify -CAfile tlscacerts tlscert passes; another cluster's CA does not",
        async () => {
          const ok = await run("openssl", [
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            tlscacerts,
            tlscert,
          ]);
          assertEquals(ok.code, 0, ok.stderr);
          assertEquals(ok.stdout.trim(), `${tlscert}: OK`);
          const bad = await run("openssl", [
            "verify",
            "-CAfile",
            `${dir}/foreign/tlscacerts`,
            tlscert,
          ]);
          assert(bad.code !== 0, "verification against another cluster's CA must fail");
          assertStringIncludes(bad.stdout + bad.stderr, "unable to get local issuer certificate");
        },
      );

      await t.step(
        "openssl x509 -text shows a client certificate with the standard extensions",
        async () => {
          const r = await run("openssl", ["x509", "-noout", "-text", "-in", tlscert]);
          assertEquals(r.code, 0, r.stderr);
          const text = r.stdout;
          assertStringIncludes(
            text,
            "X509v3 Basic Constraints: critical\n                CA:FALSE",
          );
          assertStringIncludes(
            text,
            "X509v3 Key Usage: critical\n                Digital Signature\n",
          );
          assertEquals(
            extensionValue(text, "X509v3 Extended Key Usage"),
            "TLS Web Client Authentication",
          );
          assertStringIncludes(text, "Signature Algorithm: ecdsa-with-SHA256");
          assertStringIncludes(text, "NIST CURVE: P-256");
          // Serial: 16 bytes, positive (high bit clear).
          const serial = extensionValue(text, "Serial Number:").split(":");
          assertEquals(serial.length, 16, text);
          assert(parseInt(serial[0], 16) < 0x80, "serial is positive");
          // AKI names the CA's SKI.
          const ca = await run("openssl", ["x509", "-noout", "-text", "-in", tlscacerts]);
          assertStringIncludes(
            ca.stdout,
            "X509v3 Basic Constraints: critical\n                CA:TRUE",
          );
          assertStringIncludes(ca.stdout, "Certificate Sign, CRL Sign");
          assertEquals(
            extensionValue(text, "X509v3 Authority Key Identifier").replace(/^keyid:/, ""),
            extensionValue(ca.stdout, "X509v3 Subject Key Identifier"),
          );
          assert(extensionValue(text, "X509v3 Subject Key Identifier").length > 0);
          // Validity: the TTL plus the 60 s backdate for clock skew.
          const cert = parseCertificate(certificatesFromPem(read(tlscert))[0]);
          assertEquals(cert.notAfter.getTime() - cert.notBefore.getTime(), 3600_000 + 60_000);
        },
      );

      // A service in the cluster: its certificate from the host CA, trusting the user CA.
      const served = await issueServerCertificate(cluster.ctx, {
        dnsNames: ["localhost"],
        ipAddresses: ["127.0.0.1"],
      });
      const server = {
        cert: `${dir}/server.pem`,
        key: `${dir}/server.key`,
        ca: `${dir}/host-ca.pem`,
      };
      await Deno.writeTextFile(server.cert, served.certPem);
      await Deno.writeTextFile(server.key, served.keyPem, { mode: 0o600 });
      await Deno.writeTextFile(server.ca, cluster.ctx.cas.host.tls!.certPem);

      await t.step("s_server -Verify accepts tlscert/key from s_client (mTLS)", async () => {
        const r = await mtls(server, tlscacerts, { cert: tlscert, key: `${dir}/id/key` });
        assertEquals(r.client.code, 0, r.client.stderr + r.serverLog);
        assertStringIncludes(r.client.stdout, "HTTP/1.0 200 ok");
        assertStringIncludes(r.serverLog, "depth=0 CN = bot-client");
        assert(!r.serverLog.includes("verify error"), r.serverLog);
      });

      await t.step("s_server -Verify refuses a certificate from another cluster", async () => {
        const r = await mtls(server, tlscacerts, {
          cert: `${dir}/foreign/tlscert`,
          key: `${dir}/foreign/key`,
        });
        assert(r.client.code !== 0, "the handshake must fail");
        assert(!r.client.stdout.includes("HTTP/1.0 200"), "no response for a refused client");
        assertStringIncludes(
          r.serverLog,
          "verify error:num=20:unable to get local issuer certificate",
        );
        assertStringIncludes(r.client.stderr, "alert unknown ca");
      });
    } finally {
      await cluster.stop();
      await other.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
