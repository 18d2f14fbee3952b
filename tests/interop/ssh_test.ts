/**
 * OpenSSH interop: certificates from tbot's `identity` and `ssh_host`
 * outputs, checked with `ssh-keygen -L` and used against a real `sshd` on
 * loopback with `ssh -F ssh_config` (no prompt, no trust on first use).
 *
 * Needs `openssh-client` and `openssh-server` (`apt-get install -y
 * openssh-server`) and root (sshd privilege separation, login as root).
 */
import { assert, assertEquals, assertStringIncludes } from "../_assert.ts";
import { parseSshCertificate } from "../../src/pki/mod.ts";
import {
  addBot,
  type Cluster,
  type Daemon,
  read,
  run,
  runTbotOnce,
  startCluster,
} from "./_interop_fixture.ts";
import { ssh, startSshd } from "./_sshd.ts";
import { ignoreUnless, missingTools } from "../_tools.ts";

function identityService(dir: string): string {
  return ["  - type: identity", `    destination: {type: directory, path: ${dir}}`].join("\n");
}

function sshHostService(dir: string, principals: string[]): string {
  return [
    "  - type: ssh_host",
    `    destination: {type: directory, path: ${dir}}`,
    `    principals: [${principals.join(", ")}]`,
  ].join("\n");
}

/** `ssh-keygen -l` fingerprint of an authorized_keys line. */
async function fingerprint(dir: string, keyLine: string): Promise<string> {
  const file = `${dir}/fp-${crypto.randomUUID()}.pub`;
  await Deno.writeTextFile(file, keyLine + "\n");
  const r = await run("ssh-keygen", ["-l", "-f", file]);
  assertEquals(r.code, 0, r.stderr);
  return r.stdout.split(" ")[1];
}

/** `ssh-keygen -L` of a certificate file, with times in UTC. */
async function describeCert(file: string): Promise<string> {
  const r = await run("ssh-keygen", ["-L", "-f", file], { env: { TZ: "UTC" } });
  assertEquals(r.code, 0, r.stderr);
  return r.stdout;
}

/** The indented list under `heading` in `ssh-keygen -L` output. */
function listUnder(text: string, heading: string): string[] {
  const lines = text.split("\n");
  const i = lines.findIndex((l) => l.trim().startsWith(heading));
  const out: string[] = [];
  for (const l of lines.slice(i + 1)) {
    if (!/^\s{16}\S/.test(l)) break;
    out.push(l.trim());
  }
  return out;
}

const utc = (d: Date) => d.toISOString().slice(0, 19);

Deno.test({
  name: "openssh: ssh-keygen reads the certificates and sshd accepts exactly the right ones",
  // Outside CI a machine without the tools skips; in CI (which installs them) they must run.
  ignore: ignoreUnless(
    "interop ssh test",
    Deno.uid() !== 0 ? "needs root (sshd)" : missingTools("ssh", "sshd", "ssh-keygen"),
  ),
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "keybound-ssh-" });
    const cluster: Cluster = await startCluster("ssh.interop.example.com");
    const other: Cluster = await startCluster("other.interop.example.com");
    let sshd: Daemon | undefined;
    try {
      const ctx = cluster.ctx;
      const clientSecret = await addBot(ctx, "client", {
        logins: ["root"],
        traitLogins: ["tester"],
      });
      const hostSecret = await addBot(ctx, "host", { hostCerts: true });
      await runTbotOnce(cluster, "client", clientSecret, identityService(`${dir}/client`));
      await runTbotOnce(
        cluster,
        "host",
        hostSecret,
        sshHostService(`${dir}/host`, ["localhost", "127.0.0.1"]),
      );

      await t.step(
        "ssh-keygen -L: user certificate from the user CA, principals from roles and traits",
        async () => {
          const file = `${dir}/client/key-cert.pub`;
          const text = await describeCert(file);
          const cert = await parseSshCertificate(read(file));
          assertStringIncludes(
            text,
            "Type: ecdsa-sha2-nistp256-cert-v01@openssh.com user certificate",
          );
          assertStringIncludes(text, 'Key ID: "bot-client"');
          assertStringIncludes(
            text,
            `Signing CA: ED25519 ${await fingerprint(dir, ctx.cas.user.ssh!.publicKey)}`,
          );
          assertEquals(listUnder(text, "Principals:").sort(), ["root", "tester"]);
          assertStringIncludes(text, "Critical Options: (none)");
          assertEquals(listUnder(text, "Extensions:"), [
            "permit-agent-forwarding",
            "permit-port-forwarding",
            "permit-pty",
            "permit-user-rc",
          ]);
          assertStringIncludes(
            text,
            `Valid: from ${utc(cert.validAfter)} to ${utc(cert.validBefore)}`,
          );
          assertEquals(cert.validBefore.getTime() - cert.validAfter.getTime(), 3600_000 + 60_000);
        },
      );

      await t.step(
        "ssh-keygen -L: host certificate from the host CA with the output's principals",
        async () => {
          const file = `${dir}/host/ssh_host-cert.pub`;
          const text = await describeCert(file);
          const cert = await parseSshCertificate(read(file));
          assertStringIncludes(
            text,
            "Type: ecdsa-sha2-nistp256-cert-v01@openssh.com host certificate",
          );
          assertStringIncludes(
            text,
            `Signing CA: ED25519 ${await fingerprint(dir, ctx.cas.host.ssh!.publicKey)}`,
          );
          assertEquals(listUnder(text, "Principals:"), ["localhost", "127.0.0.1"]);
          assertStringIncludes(text, "Critical Options: (none)");
          assertStringIncludes(text, "Extensions: (none)");
          assertStringIncludes(
            text,
            `Valid: from ${utc(cert.validAfter)} to ${utc(cert.validBefore)}`,
          );
          assertEquals(
            read(`${dir}/host/ssh_host-user-ca.pub`).trim(),
            ctx.cas.user.ssh!.publicKey,
          );
          assertEquals(
            read(`${dir}/client/known_hosts`).trim(),
            `@cert-authority * ${ctx.cas.host.ssh!.publicKey} type=host`,
          );
        },
      );

      const started = await startSshd(dir, `${dir}/host`);
      sshd = started.sshd;
      const port = started.port;

      await t.step(
        "ssh -F ssh_config logs in as an allowed principal and runs a command",
        async () => {
          const r = await ssh(`${dir}/client`, port, "root", "echo interop-$((6*7))");
          assertEquals(r.code, 0, r.stderr + sshd!.log);
          assertEquals(r.stdout.trim(), "interop-42");
          assertStringIncludes(sshd!.log, 'Accepted certificate ID "bot-client"');
        },
      );

      await t.step("a login for a principal the bot's roles do not allow is refused", async () => {
        const r = await ssh(`${dir}/client`, port, "nobody", "true");
        assertEquals(r.code, 255);
        assertStringIncludes(r.stderr, "Permission denied");
        assertStringIncludes(sshd!.log, "name is not a listed principal");
      });

      await t.step("an expired certificate is refused", async () => {
        const lateSecret = await addBot(ctx, "late", { logins: ["root"] });
        // The auth service's clock runs two hours behind: everything it issues is already expired.
        cluster.setClockOffset(-2 * 3600_000);
        try {
          await runTbotOnce(cluster, "late", lateSecret, identityService(`${dir}/late`));
        } finally {
          cluster.setClockOffset(0);
        }
        const cert = await parseSshCertificate(read(`${dir}/late/key-cert.pub`));
        assert(cert.validBefore.getTime() < Date.now(), "the certificate is expired");
        const r = await ssh(`${dir}/late`, port, "root", "true");
        assertEquals(r.code, 255);
        assertStringIncludes(sshd!.log, "Certificate invalid: expired");
      });

      await t.step(
        "a host certificate from another cluster fails host verification (no TOFU)",
        async () => {
          const foreignSecret = await addBot(other.ctx, "client", { logins: ["root"] });
          await runTbotOnce(other, "client", foreignSecret, identityService(`${dir}/foreign`));
          const r = await ssh(`${dir}/foreign`, port, "root", "true");
          assertEquals(r.code, 255);
          assertStringIncludes(r.stderr, "Host key verification failed");
        },
      );
    } finally {
      await sshd?.stop();
      await cluster.stop();
      await other.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "openssh: ssh_host keeps its host key across renewals and replaces only the certificate",
  ignore: ignoreUnless("interop ssh test", missingTools("ssh-keygen")),
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "keybound-ssh-host-" });
    const cluster: Cluster = await startCluster("renew.interop.example.com");
    try {
      // Each oneshot starts from new bot storage; the output's destination is what persists.
      const service = sshHostService(`${dir}/host`, ["localhost"]);
      const first = await addBot(cluster.ctx, "host1", { hostCerts: true });
      await runTbotOnce(cluster, "host1", first, service);
      const key = read(`${dir}/host/ssh_host`);
      const cert = read(`${dir}/host/ssh_host-cert.pub`);
      const second = await addBot(cluster.ctx, "host2", { hostCerts: true });
      await runTbotOnce(cluster, "host2", second, service);
      assertEquals(read(`${dir}/host/ssh_host`), key, "the host key is kept");
      assert(read(`${dir}/host/ssh_host-cert.pub`) !== cert, "the certificate is renewed");
      // The renewed certificate is for the kept key (what sshd checks when it loads the pair).
      const pub = await run("ssh-keygen", ["-y", "-f", `${dir}/host/ssh_host`]);
      assertEquals(pub.code, 0, pub.stderr);
      const text = await describeCert(`${dir}/host/ssh_host-cert.pub`);
      assertStringIncludes(
        text,
        `Public key: ECDSA-CERT ${await fingerprint(dir, pub.stdout.trim())}`,
      );
    } finally {
      await cluster.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
