/**
 * OpenSSL interop for an `identity` output with its own `credential_ttl`:
 * its own certificate verifies against the `tlscacerts` it was written with.
 */
import { assertEquals } from "../_assert.ts";
import { addBot, type Cluster, run, runTbotOnce, startCluster } from "./_interop_fixture.ts";
import { ignoreWithout } from "../_tools.ts";

Deno.test({
  name: "openssl: an identity output certificate of its own verifies with its tlscacerts",
  // Outside CI a machine without the tools skips; in CI (which installs them) they must run.
  ignore: ignoreWithout("interop identity_output_cert test", "openssl"),
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "keybound-idout-" });
    const cluster: Cluster = await startCluster("idout.interop.example.com");
    try {
      const secret = await addBot(cluster.ctx, "client", { logins: ["root"] });
      await runTbotOnce(
        cluster,
        "client",
        secret,
        [
          "  - type: identity",
          `    destination: {type: directory, path: ${dir}/id}`,
          "    credential_ttl: 10m",
          "    renewal_interval: 5m",
        ].join("\n"),
      );
      const tlscert = `${dir}/id/tlscert`;
      const r = await run("openssl", [
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        `${dir}/id/tlscacerts`,
        tlscert,
      ]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(r.stdout.trim(), `${tlscert}: OK`);
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
