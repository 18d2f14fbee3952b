/**
 * Bots follow a CA rotation in the production shape (issue #10 with HA):
 * three auth processes on one real PostgreSQL behind a real HAProxy (TCP
 * mode, TLS passed through, PROXY protocol v2), six real `tbot start`
 * daemons renewing every second through HAProxy, pinned to the host CA, so
 * they must follow the trust bundle and the cross-signed host CA to keep
 * trusting the auth service.
 *
 * A manual rotation of the user and host CAs is driven phase by phase
 * through HAProxy (each phase lands on one instance; the others follow
 * within their CA watcher's period). At each phase every instance is waited
 * for, then every bot renews twice. One instance is killed (`kill -9`)
 * right after update_clients is set and started again during
 * update_servers. At the end: no recovery consumed, no lock, no renewal
 * failed without a retry, every bot trusts only the new host CA, its
 * outputs verify under the new user CA with real `openssl` and
 * `ssh-keygen`, each instance serves a certificate from the new host CA
 * (having swapped it once, at update_servers) and holds an admin identity
 * from the new CAs.
 *
 * @module
 */
import { splitPems } from "../../src/agent/trust/mod.ts";
import {
  certificatesFromPem,
  parseCertificate,
  verifyCertificateSignature,
} from "../../src/pki/mod.ts";
import { parseIdentityFile } from "../../src/protocol/identity_file.ts";
import type { RotationPhase } from "../../src/protocol/ca_rotation.ts";
import { assert, assertEquals } from "../_assert.ts";
import { ignoreUnless, missingTools } from "../_tools.ts";
import { waitUntil } from "../_wait.ts";
import { run } from "../interop/_interop_fixture.ts";
import {
  type HaCluster,
  haMissing,
  instanceLogTails,
  instanceMetrics,
  metricTotal,
  servesFrom,
  startHaCluster,
} from "../ha/_cluster.ts";
import { postgresMissing } from "../ha/_postgres.ts";
import {
  type AuthEndpoint,
  botLog,
  countLog,
  renewalsPass,
  type RotationWorld,
  rotationWorldOn,
  type WorldBot,
} from "./_agent_world.ts";

const BOTS = 6;
const TYPES = ["user", "host"] as const;
/** The instance killed mid-rotation (instance 0's admin identity drives the test). */
const VICTIM = 2;
/** Generous: six daemons, three auth processes and PostgreSQL share two loaded cores. */
const WAIT_MS = 90_000;

type World = RotationWorld<AuthEndpoint>;

const read = (path: string) => Deno.readTextFileSync(path);

/** Both CAs' phase on every running instance, from its own `/metrics`. */
async function instancesAt(c: HaCluster, phase: RotationPhase): Promise<boolean> {
  for (const inst of c.instances.filter((i) => i.alive)) {
    const text = await instanceMetrics(inst);
    for (const type of TYPES) {
      if (
        metricTotal([text], "keybound_auth_ca_rotation_phase", `ca="${type}",phase="${phase}"`) !==
          1
      ) return false;
    }
  }
  return true;
}

/**
 * Moves the user and host CAs to `phase` through HAProxy (the admin API call
 * `tctl auth rotate --manual --phase P` makes). The test's own admin channel
 * is not under test: a connection reset by an instance's certificate swap is
 * retried, and a phase already entered by the lost attempt counts.
 */
async function setPhase(world: World, phase: RotationPhase): Promise<void> {
  for (const type of TYPES) {
    for (let attempt = 1;; attempt++) {
      try {
        await (await world.admin()).rotateCa(type, { mode: "manual", phase });
        break;
      } catch (err) {
        const now = await (await world.admin()).status().catch(() => undefined);
        if (now?.cas?.find((s) => s.type === type)?.phase === phase) break;
        if (attempt >= 3) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
}

/** Refreshes each instance served so far (0 for one that is down). */
async function refreshesServed(c: HaCluster): Promise<number[]> {
  return await Promise.all(
    c.instances.map(async (i) =>
      metricTotal(
        [await instanceMetrics(i)],
        "keybound_auth_joins_total",
        'kind="refresh",outcome="OK"',
      )
    ),
  );
}

async function openssl(args: string[]): Promise<boolean> {
  return (await run("openssl", args)).code === 0;
}

/** `SHA256:…` fingerprint of an SSH public key or certificate's signing CA, by ssh-keygen. */
async function sshFingerprint(dir: string, text: string): Promise<string> {
  const file = `${dir}/fp-${crypto.randomUUID()}.pub`;
  await Deno.writeTextFile(file, text);
  const r = await run("ssh-keygen", ["-l", "-f", file]);
  assertEquals(r.code, 0, r.stderr);
  return r.stdout.split(" ")[1];
}

async function signingCaOf(certFile: string): Promise<string> {
  const r = await run("ssh-keygen", ["-L", "-f", certFile]);
  assertEquals(r.code, 0, r.stderr);
  return /Signing CA: \S+ (SHA256:\S+)/.exec(r.stdout)![1];
}

Deno.test({
  name: "rotation HA: six tbot daemons follow a user + host rotation through HAProxy over " +
    "three instances on PostgreSQL, one killed mid-rotation",
  ignore: ignoreUnless(
    "HA rotation test",
    haMissing(postgresMissing) ?? missingTools("openssl", "ssh-keygen"),
  ),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const started = Date.now();
    await using c = await startHaCluster({ instances: 3, proxyProtocol: true });
    await using world = await rotationWorldOn(
      { url: `https://${c.address}`, addr: c.address, caPin: c.pin },
      { dir: `${c.dir}/world`, identity: `${c.instances[0].dataDir}/admin-identity` },
    );
    const bots: WorldBot[] = [];
    const perPhase: string[] = [];
    // A failed step must reach the log dump below, and the later steps need the earlier ones.
    const step = async (name: string, fn: () => Promise<void>) => {
      if (!(await t.step(name, fn))) throw new Error(`step failed: ${name}`);
    };
    try {
      for (let i = 0; i < BOTS; i++) bots.push(await world.addBot(`bot${i}`));
      await Promise.all(bots.map((b) => world.start(b)));
      await renewalsPass(bots, 1, "before the rotation", WAIT_MS);
      // Onboarding consumed one recovery per token; that is the baseline.
      const baseline = bots.map(() => 1);
      assertEquals(await Promise.all(bots.map((b) => world.recoveries(b.name))), baseline);
      const before = { user: await world.ca("user"), host: await world.ca("host") };

      /** Waits for every running instance to be in `phase`, then two renewals of every bot. */
      const inPhase = async (phase: RotationPhase) => {
        const t0 = Date.now();
        const renewals = bots.map((b) => countLog(botLog(b)).renewals);
        const served = await refreshesServed(c);
        await waitUntil(() => instancesAt(c, phase), `every instance in ${phase}`, {
          timeoutMs: 30_000,
          intervalMs: 200,
        });
        await renewalsPass(bots, 2, `in ${phase}`, WAIT_MS);
        // A restarted instance counts from zero again.
        const byInstance = (await refreshesServed(c)).map((n, i) =>
          n >= served[i] ? n - served[i] : n
        );
        const got = bots.map((b, i) => countLog(botLog(b)).renewals - renewals[i]);
        perPhase.push(
          `${phase}: renewals per bot ${got.join(",")}; refreshes per instance ${
            byInstance.join(",")
          }; ${Date.now() - t0} ms`,
        );
        return byInstance;
      };

      await step("init, then update_clients with an instance killed right after", async () => {
        await setPhase(world, "init");
        // Each bot's new trust opens a new connection, which HAProxy deals round robin.
        assert((await inPhase("init"))[VICTIM] > 0, "bots renewed through the instance to kill");
        await setPhase(world, "update_clients");
        c.kill9(VICTIM);
        await inPhase("update_clients");
      });

      await step("update_servers on the two survivors; the killed one comes back", async () => {
        await setPhase(world, "update_servers");
        await inPhase("update_servers");
        const host = (await world.ca("host")).tls_ca_certs;
        assertEquals(host.length, 2, "both host CAs trusted");
        await c.restart(VICTIM);
        // Started in update_servers: it serves from the new host CA at once.
        assert(await servesFrom(c, c.instances[VICTIM], host[0]), "restarted: new host CA");
        await inPhase("update_servers");
      });

      await step("standby: only the new CAs, every bot and output follows", async () => {
        await setPhase(world, "standby");
        const served = await inPhase("standby");
        assert(served.every((n) => n > 0), `every instance, the restarted one too: ${served}`);
        const user = await world.ca("user");
        const host = await world.ca("host");
        assertEquals(user.tls_ca_certs.length, 1);
        assertEquals(host.tls_ca_certs.length, 1);
        assert(user.tls_ca_certs[0] !== before.user.tls_ca_certs[0], "a new user CA");
        assert(host.tls_ca_certs[0] !== before.host.tls_ca_certs[0], "a new host CA");

        // Each instance serves a certificate from the new host CA, and none from the old.
        for (const inst of c.instances) {
          await waitUntil(
            () => servesFrom(c, inst, host.tls_ca_certs[0]),
            `instance ${inst.index} to serve from the new host CA`,
            { timeoutMs: 15_000, intervalMs: 200 },
          );
          assert(!(await servesFrom(c, inst, before.host.tls_ca_certs[0])), `${inst.index}: old`);
        }

        const dir = `${world.dir}/check`;
        await Deno.mkdir(dir);
        const newUserCa = `${dir}/user-ca.pem`;
        const oldUserCa = `${dir}/user-ca-old.pem`;
        await Deno.writeTextFile(newUserCa, user.tls_ca_certs[0]);
        await Deno.writeTextFile(oldUserCa, before.user.tls_ca_certs[0]);
        const userSsh = await sshFingerprint(dir, user.ssh_ca_keys[0]);
        const hostSsh = await sshFingerprint(dir, host.ssh_ca_keys[0]);
        for (const b of bots) {
          // Trust in the auth service: the new host CA alone.
          assertEquals(
            splitPems(read(`${b.storage}/host_ca.pem`)),
            splitPems(host.tls_ca_certs[0]),
          );
          // Outputs: the TLS certificate verifies under the new user CA (and the rewritten
          // tlscacerts, which lists only it), not the old one.
          const cert = `${b.identityDir}/tlscert`;
          assertEquals(
            splitPems(read(`${b.identityDir}/tlscacerts`)),
            splitPems(user.tls_ca_certs[0]),
          );
          assert(await openssl(["verify", "-CAfile", newUserCa, cert]), `${b.name}: new user CA`);
          assert(!(await openssl(["verify", "-CAfile", oldUserCa, cert])), `${b.name}: old CA`);
          // The SSH certificate is signed by the new user CA; known_hosts trusts the new host CA.
          assertEquals(await signingCaOf(`${b.identityDir}/key-cert.pub`), userSsh, b.name);
          const known = read(`${b.identityDir}/known_hosts`).trim().split("\n");
          assertEquals(known.length, 1, `${b.name} known_hosts`);
          const [, , ...key] = known[0].split(" ");
          assertEquals(await sshFingerprint(dir, key.join(" ")), hostSsh, `${b.name} known_hosts`);
        }
      });

      await step(
        "each instance swapped its certificate once, and rewrote its admin identity",
        async () => {
          // Only update_servers changes the serving key: a swap at another phase is needless,
          // and resets connections queued on the old listener. The killed instance died in
          // update_clients and came back in update_servers: it never had to swap.
          const swaps = c.instances.map((i) =>
            (i.earlierLog + i.proc.log()).split("\n").filter((l) =>
              l.includes("serving a TLS certificate from the host CA's new serving key")
            )
          );
          assertEquals(swaps.map((s) => s.length), [1, 1, 0], swaps.flat().join("\n"));
          assert(swaps.flat().every((l) => l.includes("phase=update_servers")), swaps.join("\n"));
          const userCa = parseCertificate(
            certificatesFromPem((await world.ca("user")).tls_ca_certs[0])[0],
          );
          const host = (await world.ca("host")).tls_ca_certs;
          for (const inst of c.instances) {
            await waitUntil(
              async () => {
                const id = await parseIdentityFile(
                  await Deno.readTextFile(`${inst.dataDir}/admin-identity`),
                );
                return id.hostCaPems.length === 1 && id.hostCaPems[0] === host[0] &&
                  await verifyCertificateSignature(
                    parseCertificate(id.certDer),
                    await userCa.publicKey(),
                  );
              },
              `instance ${inst.index}'s admin identity from the new CAs`,
              { timeoutMs: 15_000, intervalMs: 200 },
            );
          }
        },
      );

      await step("nothing lost: no recovery, no lock, no unretried failure", async () => {
        const recoveries = await Promise.all(bots.map((b) => world.recoveries(b.name)));
        assertEquals(recoveries, baseline, "recoveries consumed per bot");
        assertEquals((await world.locks()).length, 0, "no lock");
        const errors = bots.flatMap((b) => botLog(b).split("\n").filter((l) => / ERROR /.test(l)));
        assertEquals(errors, [], "no renewal failed without a retry");
        for (const b of bots) assert(b.daemon !== undefined, `${b.name} still running`);
      });

      const logs = bots.map((b) => countLog(botLog(b)));
      const retries = bots.flatMap((b) => botLog(b).split("\n").filter((l) => /retrying/.test(l)));
      console.log(
        `rotation HA: ${BOTS} daemons, ${logs.reduce((n, l) => n + l.renewals, 0)} renewals, ` +
          `${logs.reduce((n, l) => n + l.retried, 0)} retried attempts, ` +
          `${Math.round((Date.now() - started) / 1000)} s\n  ` + perPhase.join("\n  ") +
          retries.map((l) => `\n  retried: ${l}`).join(""),
      );
    } catch (err) {
      console.error(instanceLogTails(c));
      for (const b of bots) {
        console.error(
          `--- ${b.name} ---\n${botLog(b).trimEnd().split("\n").slice(-15).join("\n")}`,
        );
      }
      throw err;
    }
  },
});
