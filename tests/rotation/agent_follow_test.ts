/**
 * Bots follow CA rotations by themselves (issue #10, agent side), with real
 * processes and tools: one real auth service, ten real `tbot start` daemons
 * renewing every second or so (trusting the auth service by CA pin), real
 * `tctl auth rotate`, and the daemons' outputs handed to real `openssl`,
 * `sshd`/`ssh` and jose.
 *
 * One world for all steps (an auth service and ten daemons cost ~5 s to
 * start); each step says what it checks. Throughout: no renewal fails
 * without being retried, no recovery is consumed, no lock is created —
 * except the one bot that sleeps through a rotation, which recovers once.
 *
 * @module
 */
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { fetchUnverified } from "../../runtime-adapters/deno/trust.ts";
import { splitPems } from "../../src/agent/trust/mod.ts";
import {
  certificatesFromPem,
  parseCertificate,
  parseSshCertificate,
  verifyCertificateSignature,
} from "../../src/pki/mod.ts";
import { exportSpki, importPkcs8Pem } from "../../src/crypto/keys.ts";
import { assert, assertEquals, assertNotEquals, assertStringIncludes } from "../_assert.ts";
import { waitUntil } from "../_wait.ts";
import {
  CA_TYPES,
  type CaTypeName as CaType,
  type RotationPhase,
} from "../../src/protocol/ca_rotation.ts";
import { run } from "../interop/_interop_fixture.ts";
import { ssh, startSshd } from "../interop/_sshd.ts";
import { ignoreUnless, missingTools } from "../_tools.ts";
import { sshConfigText } from "../../src/agent/outputs/ssh_config.ts";
import {
  botLog,
  countLog,
  renewalsPass,
  type RotationWorld,
  startRotationWorld,
  type WorldBot,
} from "./_agent_world.ts";

const TYPES = CA_TYPES;
const BOTS = 10;

async function phases(world: RotationWorld): Promise<Record<string, string>> {
  const s = await (await world.admin()).status();
  return Object.fromEntries((s.cas ?? []).map((c) => [c.type, c.phase]));
}

/**
 * Moves each CA type to `phase` (the admin API call `tctl auth rotate
 * --manual --phase P` makes; tests/rotation/ covers tctl itself), then waits
 * for two renewals of every running bot, so each renewed within the phase.
 */
async function manualPhase(
  world: RotationWorld,
  types: CaType[],
  phase: RotationPhase,
  bots: WorldBot[],
): Promise<void> {
  const admin = await world.admin();
  for (const type of types) await admin.rotateCa(type, { mode: "manual", phase });
  const now = await phases(world);
  for (const type of types) assertEquals(now[type], phase, `${type} moved to ${phase}`);
  await renewalsPass(bots, 2, `in ${phase}`);
}

/** True if `pem`'s key signed the certificate `der`. */
async function signedBy(der: Uint8Array, pem: string): Promise<boolean> {
  const ca = parseCertificate(certificatesFromPem(pem)[0]);
  return await verifyCertificateSignature(parseCertificate(der), await ca.publicKey());
}

/** The auth service's TLS leaf, as any client sees it. */
async function serverLeaf(world: RotationWorld): Promise<Uint8Array> {
  return (await fetchUnverified(world.auth.url)).leafDer;
}

const read = (path: string) => Deno.readTextFileSync(path);

async function openssl(args: string[]): Promise<{ ok: boolean; out: string }> {
  const r = await run("openssl", args);
  return { ok: r.code === 0, out: r.stdout + r.stderr };
}

/**
 * A consistent copy of an identity output (key, certificates, CAs, known_hosts)
 * with its own ssh_config: the daemon rewrites the files every second, so a
 * copy is taken again until the key matches both certificates.
 */
async function keepIdentity(from: string, to: string): Promise<void> {
  const names = ["key", "key-cert.pub", "tlscert", "tlscacerts", "known_hosts"];
  await Deno.mkdir(to, { recursive: true });
  for (let i = 0; i < 40; i++) {
    const files = names.map((f) => read(`${from}/${f}`));
    try {
      const spki = await exportSpki((await importPkcs8Pem(files[0])).publicKey);
      const same = (a: Uint8Array) => a.length === spki.length && a.every((v, j) => v === spki[j]);
      const tls = parseCertificate(certificatesFromPem(files[2])[0]).spki;
      const ssh = await exportSpki((await parseSshCertificate(files[1])).publicKey);
      if (same(tls) && same(ssh)) {
        for (const [j, f] of names.entries()) await Deno.writeTextFile(`${to}/${f}`, files[j]);
        await Deno.chmod(`${to}/key`, 0o600);
        await Deno.writeTextFile(`${to}/ssh_config`, sshConfigText(to));
        return;
      }
    } catch {
      // caught mid-write: try again
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no consistent copy of ${from}`);
}

/** Every bot's log counts and token recovery counts, for the assertions and the notes. */
async function tally(world: RotationWorld, bots: WorldBot[]) {
  const logs = bots.map((b) => countLog(botLog(b)));
  return {
    renewals: logs.reduce((n, c) => n + c.renewals, 0),
    retried: logs.reduce((n, c) => n + c.retried, 0),
    unretried: logs.reduce((n, c) => n + c.unretried, 0),
    recoveries: await Promise.all(bots.map((b) => world.recoveries(b.name))),
    locks: (await world.locks()).length,
  };
}

function assertQuiet(t: Awaited<ReturnType<typeof tally>>, recoveries: number[], bots: WorldBot[]) {
  const errors = bots.flatMap((b) => botLog(b).split("\n").filter((l) => / ERROR /.test(l)));
  assertEquals(t.unretried, 0, `no renewal failed without a retry:\n${errors.join("\n")}`);
  assertEquals(t.recoveries, recoveries, "recoveries consumed per bot");
  assertEquals(t.locks, 0, "no lock");
}

Deno.test({
  name: "rotation (agent): ten tbot daemons follow automatic and manual rotations of every CA",
  ignore: ignoreUnless(
    "agent rotation test",
    Deno.uid() !== 0 ? "needs root (sshd)" : missingTools("openssl", "ssh", "sshd"),
  ),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const started = Date.now();
    await using world = await startRotationWorld();
    const bots = await Promise.all(
      Array.from(
        { length: BOTS },
        (_, i) =>
          world.addBot(`bot${i}`, {
            sshHost: i === 0,
            workload: i === 0,
            // The sleeper's certificate must outlive its sleep: CA_KEY_DROPPED, not expiry.
            ...(i === BOTS - 1 ? { ttl: "10m" } : {}),
          }),
      ),
    );
    await Promise.all(bots.map((b) => world.start(b)));
    const [withHost, client, sleeper] = [bots[0], bots[1], bots[BOTS - 1]];
    // Onboarding consumed one recovery per token; that is the baseline.
    const baseline = bots.map(() => 1);
    assertEquals((await tally(world, bots)).recoveries, baseline);
    // This one sleeps through both rotations below, its certificate still within its TTL.
    await world.stop(sleeper);
    const awake = bots.filter((b) => b !== sleeper);

    await t.step("automatic rotation of all five CA types at once, 12 s grace period", async () => {
      const before = {
        host: (await world.ca("host")).tls_ca_certs,
        jwt: read(`${withHost.workload!.jwt}/jwt_svid`),
        svid: `${world.dir}/svid-before.pem`,
        bundle: `${world.dir}/bundle-before.pem`,
      };
      await Deno.copyFile(`${withHost.workload!.x509}/svid.pem`, before.svid);
      await Deno.copyFile(`${withHost.workload!.x509}/svid_bundle.pem`, before.bundle);
      await Promise.all(
        TYPES.map((type) =>
          world.tctlOk(["auth", "rotate", `--type=${type}`, "--grace-period=12s"])
        ),
      );
      const seen: Record<string, Set<string>> = {};
      let jwtChecked = false;
      let spiffeChecked = false;
      await waitUntil(
        async () => {
          const now = await phases(world);
          for (const type of TYPES) (seen[type] ??= new Set()).add(now[type]);
          if (!jwtChecked && now.jwt === "update_servers") {
            // The JWKS serves both keys; a JWT-SVID from the old key and one from the new verify.
            const jwks = await (await world.get("/.well-known/jwks.json")).json();
            assertEquals(jwks.keys.length, 2, "both JWT keys published");
            const current = read(`${withHost.workload!.jwt}/jwt_svid`);
            assertNotEquals(
              decodeProtectedHeader(current).kid,
              decodeProtectedHeader(before.jwt).kid,
              "the output's JWT-SVID is from the new key",
            );
            const keySet = createLocalJWKSet(jwks);
            for (const jwt of [before.jwt, current]) {
              await jwtVerify(jwt, keySet, { audience: "rotation-test" });
            }
            jwtChecked = true;
          }
          if (!spiffeChecked && now.spiffe === "update_servers") {
            const bundle = `${withHost.workload!.x509}/svid_bundle.pem`;
            const svid = `${withHost.workload!.x509}/svid.pem`;
            assertEquals(splitPems(read(bundle)).length, 2, "svid_bundle.pem holds both CAs");
            for (const file of [before.svid, svid]) {
              const r = await openssl(["verify", "-CAfile", bundle, file]);
              assert(r.ok, `openssl verify ${file} with the rewritten bundle: ${r.out}`);
            }
            const r = await openssl(["verify", "-CAfile", before.bundle, svid]);
            assert(!r.ok, "the current SVID is from the new SPIFFE CA");
            spiffeChecked = true;
          }
          return TYPES.every((type) => now[type] === "standby" && seen[type].size > 1);
        },
        "every CA back in standby",
        { timeoutMs: 60_000, intervalMs: 250 },
      );
      for (const type of TYPES) {
        // (init lasts a third of the grace period and may pass while the others start)
        for (const phase of ["update_clients", "update_servers"]) {
          assert(seen[type].has(phase), `${type} was seen in ${phase}: ${[...seen[type]]}`);
        }
      }
      assert(jwtChecked, "the JWKS was checked during the jwt rotation");
      assert(spiffeChecked, "the SVID bundle was checked during the spiffe rotation");
      await renewalsPass(awake, 2, "after standby");

      // Every bot's trust in the auth service moved to the new host CA, and only to it.
      const host = (await world.ca("host")).tls_ca_certs;
      assertEquals(host.length, 1);
      assertNotEquals(host[0], before.host[0]);
      assert(await signedBy(await serverLeaf(world), host[0]), "served from the new host CA");
      for (const b of awake) {
        assertEquals(splitPems(read(`${b.storage}/host_ca.pem`)), splitPems(host[0]), b.name);
      }
      assertQuiet(await tally(world, awake), baseline.slice(1), awake);
    });

    const userCas = `${world.dir}/user-cas-before.pem`;
    await t.step({
      name: "manual user + host rotation to standby: openssl and OpenSSH follow the outputs",
      async fn() {
        const old = `${world.dir}/old-client`;
        await keepIdentity(client.identityDir, old);
        const knownHostsBefore = read(`${old}/known_hosts`);
        await Deno.copyFile(`${client.identityDir}/tlscacerts`, userCas);
        const sshdDir = `${world.dir}/sshd-old`;
        await Deno.mkdir(sshdDir);
        // TrustedUserCAKeys is the live output file: sshd reads it at every login.
        let sshd = await startSshd(sshdDir, withHost.hostDir!);
        try {
          await manualPhase(world, ["user", "host"], "init", awake);
          // From init on, every trust file an output writes lists both keys.
          const lines = (path: string) => read(path).trim().split("\n").length;
          assertEquals(lines(`${withHost.hostDir}/ssh_host-user-ca.pub`), 2);
          assertEquals(lines(`${client.identityDir}/sshcacerts`), 2);
          assertEquals(lines(`${client.identityDir}/known_hosts`), 2);
          assertEquals(splitPems(read(`${client.identityDir}/tlscacerts`)).length, 2);
          assertEquals(splitPems(read(`${client.storage}/host_ca.pem`)).length, 2);
          await manualPhase(world, ["user", "host"], "update_clients", awake);
          const fresh = `${world.dir}/new-client`;
          await keepIdentity(client.identityDir, fresh);

          // openssl: the rewritten tlscacerts accept the old and the new bot certificate.
          const cas = `${bots[2].identityDir}/tlscacerts`;
          assertEquals(splitPems(read(cas)).length, 2, "tlscacerts lists both user CAs");
          for (const dir of [old, fresh]) {
            const r = await openssl(["verify", "-CAfile", cas, `${dir}/tlscert`]);
            assert(r.ok, `openssl verify ${dir}/tlscert: ${r.out}`);
          }
          assert(
            !(await openssl(["verify", "-CAfile", userCas, `${fresh}/tlscert`])).ok,
            "the new certificate is from the new user CA",
          );

          // sshd with the output's TrustedUserCAKeys: old and new user certificates log in.
          for (const dir of [old, fresh]) {
            await Deno.copyFile(`${client.identityDir}/known_hosts`, `${dir}/known_hosts`);
            const r = await ssh(dir, sshd.port, "root", "echo ok");
            assertEquals(r.stdout.trim(), "ok", `${dir}: ${r.stderr}\n${sshd.sshd.log}`);
          }

          // ssh with the known_hosts output trusts a host certificate from the new host CA.
          await sshd.sshd.stop();
          sshd = await startSshd(sshdDir, withHost.hostDir!);
          const now = `${world.dir}/now-client`;
          await keepIdentity(client.identityDir, now);
          const byNewHostCa = await ssh(now, sshd.port, "root", "echo ok");
          assertEquals(byNewHostCa.stdout.trim(), "ok", byNewHostCa.stderr);
          await Deno.writeTextFile(`${old}/known_hosts`, knownHostsBefore);
          const oldKnownHosts = await ssh(old, sshd.port, "root", "true");
          assertStringIncludes(
            oldKnownHosts.stderr,
            "Host key verification failed",
            "the host certificate is from the new host CA",
          );

          await manualPhase(world, ["user", "host"], "update_servers", awake);
          const host = (await world.ca("host")).tls_ca_certs;
          assert(await signedBy(await serverLeaf(world), host[0]), "served from the new host CA");
          await manualPhase(world, ["user", "host"], "standby", awake);

          // After standby: only the new user CA.
          assertEquals(splitPems(read(cas)).length, 1);
          assert(!(await openssl(["verify", "-CAfile", cas, `${old}/tlscert`])).ok);
          assert((await openssl(["verify", "-CAfile", cas, `${fresh}/tlscert`])).ok);
          await sshd.sshd.stop();
          sshd = await startSshd(sshdDir, withHost.hostDir!);
          for (const dir of [old, fresh]) {
            await Deno.copyFile(`${client.identityDir}/known_hosts`, `${dir}/known_hosts`);
          }
          const refused = await ssh(old, sshd.port, "root", "true");
          assertEquals(refused.code, 255, "the old user CA's certificate is refused");
          const accepted = await ssh(fresh, sshd.port, "root", "echo ok");
          assertEquals(accepted.stdout.trim(), "ok", accepted.stderr);
        } finally {
          await sshd.sshd.stop();
        }
        assertQuiet(await tally(world, awake), baseline.slice(1), awake);
      },
    });

    await t.step({
      name: "a bot offline through both rotations (all five CAs, then user + host) recovers once",
      async fn() {
        // Its saved host CA is two rotations old: it follows two cross-signatures.
        await world.start(sleeper);
        await renewalsPass([sleeper], 2, "after the recovery");
        const log = botLog(sleeper);
        assertStringIncludes(log, "moved the trust in the auth service to its new host CA");
        assertStringIncludes(log, "a completed CA rotation dropped");
        assertStringIncludes(log, "consumes one recovery");
        assertEquals(countLog(log).recoveries, 1);
        assertEquals(countLog(log).unretried, 0, log);
        assertEquals(await world.recoveries(sleeper.name), 2, "one recovery consumed");
        const host = (await world.ca("host")).tls_ca_certs;
        assertEquals(splitPems(read(`${sleeper.storage}/host_ca.pem`)), splitPems(host[0]));
      },
    });

    await t.step("manual user + host rotation rolled back from update_servers", async () => {
      const running = bots.filter((b) => b.daemon);
      const host = (await world.ca("host")).tls_ca_certs;
      for (const phase of ["init", "update_clients", "update_servers"] as const) {
        await manualPhase(world, ["user", "host"], phase, running);
      }
      assert(!(await signedBy(await serverLeaf(world), host[0])), "served from the new host CA");
      await manualPhase(world, ["user", "host"], "rollback", running);
      assert(await signedBy(await serverLeaf(world), host[0]), "served from the old host CA again");
      await manualPhase(world, ["user", "host"], "standby", running);
      assertEquals((await world.ca("host")).tls_ca_certs, host, "the old host CA only");
      assert(await signedBy(await serverLeaf(world), host[0]), "served from the old host CA");
      for (const b of running) {
        assertEquals(splitPems(read(`${b.storage}/host_ca.pem`)), splitPems(host[0]), b.name);
      }
    });

    const final = await tally(world, bots);
    const expected = bots.map((b) => (b === sleeper ? 2 : 1));
    assertQuiet(final, expected, bots);
    const retries = bots.flatMap((b) => botLog(b).split("\n").filter((l) => /retrying/.test(l)));
    console.log(
      `rotation (agent): ${BOTS} daemons, ${final.renewals} renewals, ${final.retried} retried ` +
        `attempts, ${final.unretried} unretried failures, recoveries ${
          final.recoveries.join(",")
        }, ` +
        `${final.locks} locks, ${Math.round((Date.now() - started) / 1000)} s` +
        retries.map((l) => `\n  retried: ${l}`).join(""),
    );
  },
});
