/**
 * The user CA's Ed25519 X.509 key across two real auth processes on one real
 * PostgreSQL: a bot with Ed25519 subject keys refreshing through each in turn
 * presents to each a certificate the other signed (so each verifies the
 * Ed25519 signature itself, not from its cache of what it issued), and after
 * a phase change made through one instance the other signs with the new
 * Ed25519 key.
 *
 * @module
 */
import type { CaStatus } from "../../src/protocol/ca_rotation.ts";
import { assert, assertEquals } from "../_assert.ts";
import { haMissing, type Instance, startHaCluster } from "../ha/_cluster.ts";
import { postgresMissing } from "../ha/_postgres.ts";
import { tctl } from "../tctl/_harness.ts";
import { eventually, RotationBot } from "./_auth.ts";
import { assertIssued } from "./_ed25519.ts";

const via = (i: Instance, ...args: string[]) =>
  tctl([...args, "--auth-server", i.proc.addr, "-i", `${i.dataDir}/admin-identity`]);

async function exported(i: Instance, type: string, format: string): Promise<string[]> {
  const r = await via(i, "auth", "export", `--type=${type}`, `--format=${format}`);
  assertEquals(r.code, 0, r.stderr);
  return r.stdout.split(/(?<=-----END CERTIFICATE-----\n)/).filter((s) => s.trim() !== "");
}

async function userPhase(i: Instance): Promise<string> {
  const r = await via(i, "status", "--format=json");
  assertEquals(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).cas.find((c: CaStatus) => c.type === "user").phase;
}

Deno.test({
  name: "Ed25519 user CA HA: each instance verifies the other's Ed25519 certificates",
  ignore: haMissing(postgresMissing) !== undefined,
  sanitizeResources: false,
  async fn() {
    await using c = await startHaCluster({ instances: 2, haproxy: false });
    const [a, b] = c.instances;
    const bot = new RotationBot(a.proc.url, "ed", await exported(a, "host", "pem"));
    const add = await via(
      a,
      "bots",
      "add",
      "ed",
      "--initial-public-key",
      await bot.keys.add("EdDSA"),
    );
    assertEquals(add.code, 0, add.stderr);
    bot.subjectAlg = "EdDSA";
    const through = async (i: Instance) => {
      bot.h = { ...bot.h, baseUrl: i.proc.url };
      return await bot.renew();
    };
    const [e0] = await exported(a, "user", "ed25519-pem");
    await assertIssued(await through(a), e0, [e0], "onboarding through A");
    await assertIssued(await through(b), e0, [e0], "B verified A's certificate");
    await assertIssued(await through(a), e0, [e0], "A verified B's certificate");

    for (const phase of ["init", "update_clients"]) {
      const r = await via(a, "auth", "rotate", "--type=user", "--manual", `--phase=${phase}`);
      assertEquals(r.code, 0, r.stderr);
    }
    await eventually(async () => (await userPhase(b)) === "update_clients", 10_000, "B sees it");
    const [e1] = await exported(b, "user", "ed25519-pem");
    const metrics = await (await fetch(`${b.proc.diagUrl}/metrics`)).text();
    assert(/keybound_auth_ca_trusted_ed25519_x509_keys\{ca="user"\} 2\n/.test(metrics), metrics);
    await assertIssued(await through(b), e1, [e1, e0], "B signs with the new key");
    await assertIssued(await through(a), e1, [e1, e0], "A verified B's new-key certificate");
    await assertIssued(await through(b), e1, [e1, e0], "B verified A's new-key certificate");
  },
});
