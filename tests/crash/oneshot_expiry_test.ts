/**
 * Issue #8 item 7 with real processes: a oneshot tbot whose certificate
 * expires between `begin` and `continue` of its refresh falls back to a
 * recovery and exits 0 (it used to exit 1 with UNAUTHENTICATED). A proxy in
 * front of the real auth service holds the refresh's `continue` until the
 * certificate has expired.
 */
import { certificatesFromPem, parseCertificate } from "../../src/pki/x509_parse.ts";
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { startDroppingProxy } from "./_dropping_proxy.ts";
import { oneshotYaml, startKillWorld, startTbot } from "./_kill_world.ts";

Deno.test({
  name: "oneshot: a certificate expiring mid-refresh falls back to recovery and exits 0",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const world = await startKillWorld("keybound-oneshot-expiry-");
    const proxy = startDroppingProxy(world.auth.url);
    try {
      await world.createBot("expiring");
      const secret = await world.createToken("expiring", "expiring");
      const storage = `${world.dir}/storage`;
      const config = `${world.dir}/tbot.yaml`;
      await Deno.writeTextFile(
        config,
        oneshotYaml({ server: proxy.url, token: "expiring", storage, secret }) +
          "credential_ttl: 20s\nrenewal_interval: 10s\n",
      );
      const first = await startTbot(config).done;
      assertEquals(first.code, 0, first.log);
      const cert = parseCertificate(
        certificatesFromPem(await Deno.readTextFile(`${storage}/tlscert`))[0],
      );
      let held = false;
      proxy.hooks = {
        beforeContinue: async () => {
          if (held) return;
          held = true;
          // The refresh's signed continue reaches the server after the certificate expired.
          const wait = cert.notAfter.getTime() + 1500 - Date.now();
          await new Promise((r) => setTimeout(r, Math.max(0, wait)));
        },
      };
      const second = await startTbot(config).done;
      proxy.hooks = {};
      assert(held, "the run refreshed (its certificate was still valid at begin)");
      assertEquals(second.code, 0, second.log);
      assertStringIncludes(second.log, "the certificate expired during the refresh");
      assertStringIncludes(second.log, "recovered: joined again as a new bot instance");
      assertEquals((await world.status("expiring")).recovery_count, 2);
      assertEquals(await world.locks(), []);
    } finally {
      await proxy.close();
      await world.close();
    }
  },
});
