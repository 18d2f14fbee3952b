/**
 * CA rotation with two real auth processes on one real PostgreSQL: a phase
 * changed through one instance is seen by the other within the CA watcher's
 * period; each instance swaps its own TLS certificate at update_servers and
 * keeps its own admin identity working; an automatic user CA rotation is
 * applied once per phase although both instances race to apply it, and a
 * bot renewing through both instances alternately never gets a certificate
 * from a key that was no longer signing.
 *
 * @module
 */
import { certificatesFromPem, parseCertificate } from "../../src/pki/mod.ts";
import type { CaStatus } from "../../src/protocol/ca_rotation.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import { assert, assertEquals } from "../_assert.ts";
import { haMissing, type Instance, startHaCluster } from "../ha/_cluster.ts";
import { postgresMissing } from "../ha/_postgres.ts";
import { tctl } from "../tctl/_harness.ts";
import { eventually, issuerOf, pemPin, RotationBot, servedLeaf } from "./_auth.ts";

const via = (i: Instance, ...args: string[]) =>
  tctl([...args, "--auth-server", i.proc.addr, "-i", `${i.dataDir}/admin-identity`]);

async function caList(i: Instance, type: "host" | "user"): Promise<string[]> {
  const r = await via(i, "auth", "export", `--type=${type}`, "--format=pem");
  assertEquals(r.code, 0, r.stderr);
  return r.stdout.split(/(?<=-----END CERTIFICATE-----\n)/).filter((s) => s.trim() !== "");
}

async function statusOf(i: Instance, type: string): Promise<CaStatus> {
  const r = await via(i, "status", "--format=json");
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).cas.find((c: CaStatus) => c.type === type);
}

Deno.test({
  name: "rotation HA: two instances on PostgreSQL switch phases together",
  ignore: haMissing(postgresMissing) !== undefined,
  sanitizeResources: false,
  async fn(t) {
    await using c = await startHaCluster({ instances: 2, haproxy: false });
    const [a, b] = c.instances;
    const [h0] = await caList(a, "host");

    await t.step(
      "host: a phase set through A is seen by B; each swaps its TLS certificate",
      async () => {
        let r = await via(a, "auth", "rotate", "--type=host", "--manual");
        assertEquals(r.code, 0, r.stderr);
        const t0 = performance.now();
        await eventually(async () => (await caList(b, "host")).length === 2, 10_000, "B sees init");
        const seenMs = performance.now() - t0;
        const metrics = await (await fetch(`${b.proc.diagUrl}/metrics`)).text();
        assert(
          /keybound_auth_ca_rotation_phase\{ca="host",phase="init"\} 1\n/.test(metrics),
          metrics,
        );
        assert(/keybound_auth_ca_rotation_phase\{ca="host",phase="standby"\} 0\n/.test(metrics));
        assert(/keybound_auth_ca_trusted_keys\{ca="host"\} 2\n/.test(metrics));
        r = await via(b, "auth", "rotate", "--type=host", "--manual", "--phase=update_clients");
        assertEquals(r.code, 0, r.stderr);
        const [h1] = await caList(b, "host");
        await eventually(async () => (await caList(a, "host"))[0] === h1, 10_000, "A sees it");
        for (const i of c.instances) {
          assertEquals(
            await issuerOf(await servedLeaf(i.proc.url), [h0, h1]),
            h0,
            "old still serves",
          );
        }
        r = await via(a, "auth", "rotate", "--type=host", "--manual", "--phase=update_servers");
        assertEquals(r.code, 0, r.stderr);
        const t1 = performance.now();
        for (const i of c.instances) {
          await eventually(
            async () => (await issuerOf(await servedLeaf(i.proc.url), [h0, h1])) === h1,
            15_000,
            `instance ${i.index} to serve from the new host CA`,
          );
        }
        // Informational (a loaded machine stretches them): how fast the instances followed.
        console.log(
          `B listed init ${seenMs.toFixed(0)} ms after A's tctl returned (includes a tctl run); ` +
            `both served the new host CA ${
              (performance.now() - t1).toFixed(0)
            } ms after update_servers`,
        );
        r = await via(b, "auth", "rotate", "--type=host", "--manual", "--phase=standby");
        assertEquals(r.code, 0, r.stderr);
        for (const i of c.instances) {
          await eventually(async () => (await caList(i, "host")).length === 1, 10_000, "standby");
          // Each instance rewrote its own admin identity: it trusts exactly the new host CA.
          await eventually(
            async () => {
              const id = await parseIdentityFile(
                await Deno.readTextFile(`${i.dataDir}/admin-identity`),
              );
              return id.hostCaPems.length === 1 && id.hostCaPems[0] === h1;
            },
            10_000,
            "admin identity rewritten",
          );
          assertEquals((await via(i, "status")).code, 0);
        }
        const audit = JSON.parse(
          (await via(a, "audit", "ls", "--type=ca.rotation", "--format=json"))
            .stdout,
        );
        assertEquals(audit.length, 4, "one event per phase change");
      },
    );

    await t.step(
      "user: an automatic rotation is applied once per phase by racing instances",
      async () => {
        // A bot that renews through A and B alternately, following the trust bundle.
        const [first] = await caList(a, "host");
        const bot = new RotationBot(a.proc.url, "rb", [first]);
        const pub = await bot.keys.add("EdDSA");
        const add = await via(a, "bots", "add", "rb", "--initial-public-key", pub);
        assertEquals(add.code, 0, add.stderr);
        const before = await bot.renew();
        const r = await via(b, "auth", "rotate", "--type=user", "--grace-period=9s");
        assertEquals(r.code, 0, r.stderr);
        let n = 0;
        // The certificate from before the rotation counts: on a loaded machine one
        // renewal can outlast a 3 s phase, so the loop may see only the new key.
        const issuers = new Set<string>([
          await pemPin(before.certificates.tls_ca_certs[0]),
        ]);
        await eventually(
          async () => {
            bot.h = { ...bot.h, baseUrl: c.instances[n++ % 2].proc.url };
            const res = await bot.renew();
            // Each certificate comes from the key its own answer lists first (the signing key).
            const cert = parseCertificate(certificatesFromPem(res.certificates.tls_cert)[0]);
            const signer = await issuerOf(cert, res.certificates.tls_ca_certs);
            assertEquals(signer, res.certificates.tls_ca_certs[0], `renewal ${n}`);
            issuers.add(await pemPin(signer!));
            const [sa, sb] = await Promise.all([statusOf(a, "user"), statusOf(b, "user")]);
            return sa.phase === "standby" && sb.phase === "standby" && sa.keys.length === 1 &&
              sb.keys.length === 1;
          },
          90_000,
          "both instances at standby",
        );
        assert(n >= 2, `only ${n} renewals: both instances must have answered`);
        assertEquals(issuers.size, 2, "renewals got certificates from the old, then the new key");
        // After standby, through either instance: only the new key signs.
        for (const i of c.instances) {
          bot.h = { ...bot.h, baseUrl: i.proc.url };
          const res = await bot.renew();
          assertEquals(res.certificates.tls_ca_certs.length, 1);
          const cert = parseCertificate(certificatesFromPem(res.certificates.tls_cert)[0]);
          assertEquals(
            await issuerOf(cert, res.certificates.tls_ca_certs),
            res.certificates.tls_ca_certs[0],
          );
        }
        const events = JSON.parse(
          (await via(a, "audit", "ls", "--type=ca.rotation", "--format=json"))
            .stdout,
        ).filter((e: { ca_type: string }) => e.ca_type === "user");
        assertEquals(
          events.map((e: { phase: string }) => e.phase).reverse(),
          ["init", "update_clients", "update_servers", "standby"],
          "each automatic phase change applied and audited exactly once",
        );
      },
    );
  },
});
