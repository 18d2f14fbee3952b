/**
 * Manual CA rotation against a real auth process (HTTP on 127.0.0.1, Deno KV
 * file) driven by real tctl: each phase of the host and user CAs, what the
 * server signs with and lists, its own TLS certificate swapped at
 * update_servers without a restart, tctl's admin identity following the
 * host CA, `CA_KEY_DROPPED` for a certificate of a dropped key and the one
 * recovery that follows, a rollback from update_servers, and refusals of
 * bad input that change nothing.
 *
 * @module
 */
import { KeyboundError } from "../../src/errors.ts";
import { certificatesFromPem, parseCertificate } from "../../src/pki/mod.ts";
import { assert, assertEquals } from "../_assert.ts";
import { rejectsCode } from "../server/_join_fixture.ts";
import { eventually, issuerOf, pemPin, startRotationAuth } from "./_auth.ts";

function certOf(pem: string) {
  return parseCertificate(certificatesFromPem(pem)[0]);
}

Deno.test({
  name: "rotation: bad input is refused in one line and changes nothing",
  sanitizeResources: false,
  async fn() {
    await using auth = await startRotationAuth();
    const before = await auth.status();
    const cases: [string[], RegExp][] = [
      [["--type=nope", "--manual"], /unknown CA type "nope"/],
      [["--manual"], /--type is required/],
      [["--type=user", "--manual", "--phase=update_servers"], /cannot move from standby/],
      [["--type=user", "--manual", "--phase=standby"], /already in phase standby/],
      [["--type=user", "--phase=init"], /--phase needs --manual/],
      [["--type=user", "--manual", "--phase=sideways"], /unknown phase "sideways"/],
      [["--type=user", "--grace-period=-5m"], /--grace-period/],
    ];
    for (const [args, re] of cases) {
      const r = await auth.tctl("auth", "rotate", ...args);
      assert(r.code !== 0, `accepted: ${args.join(" ")}`);
      assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert(re.test(r.stderr), `${args.join(" ")}: ${r.stderr}`);
    }
    // Already rotating: a second init is refused with ROTATION_IN_PROGRESS.
    await auth.phase("host", "init");
    const mid = await auth.status();
    const again = await auth.tctl("auth", "rotate", "--type=host", "--manual");
    assert(again.code !== 0);
    assert(/ROTATION_IN_PROGRESS.*already rotating/.test(again.stderr), again.stderr);
    const auto = await auth.tctl("auth", "rotate", "--type=host", "--grace-period=1h");
    assert(/ROTATION_IN_PROGRESS/.test(auto.stderr), auto.stderr);
    assertEquals(await auth.status(), mid, "refusals changed the state");
    // Nothing but the host CA moved.
    assertEquals(
      mid.cas.filter((c) => c.type !== "host"),
      before.cas.filter((c) => c.type !== "host"),
    );
    const audit = await auth.tctl("audit", "ls", "--type=ca.rotation", "--format=json");
    assertEquals(JSON.parse(audit.stdout).length, 1, "one audit event: the one phase change");
  },
});

Deno.test({
  name: "rotation: manual host and user rotation; bots follow, tctl keeps working",
  sanitizeResources: false,
  async fn(t) {
    await using auth = await startRotationAuth();
    const bot = await auth.onboard("b1");
    const sleeper = await auth.onboard("b2"); // stays offline through the user rotation
    const [h0] = await auth.hostCas();
    const h0Pin = await pemPin(h0);
    assertEquals(await auth.servingPin(), h0Pin);

    await t.step("host: init trusts a new key; the old one signs and serves", async () => {
      await auth.phase("host", "init");
      const cas = await auth.hostCas();
      assertEquals(cas.length, 2);
      assertEquals(cas[0], h0, "signing key first");
      const r = await bot.renew();
      assertEquals(r.trust_bundle!.host.tls_ca_certs, cas);
      assertEquals(r.trust_bundle!.host.ssh_ca_keys.length, 2);
      assertEquals(await auth.servingPin(), h0Pin);
      const s = await auth.ca("host");
      assertEquals([s.phase, s.mode, s.keys.map((k) => k.role)], [
        "init",
        "manual",
        ["signing", "trusted"],
      ]);
    });

    let h1 = "";
    await t.step("host: update_clients: the new key signs, the old still serves TLS", async () => {
      await auth.phase("host", "update_clients");
      const cas = await auth.hostCas();
      h1 = cas[0];
      assertEquals(cas, [h1, h0]);
      assertEquals(await auth.servingPin(), h0Pin);
      // The public /v1/ca/host carries the new key cross-signed by the old one.
      const body = await (await bot.fetch(`${auth.proc.url}/v1/ca/host`)).json();
      assertEquals(body.tls_ca_certs, [h1, h0]);
      assertEquals(body.cross_signed.length, 1);
      const cross = certOf(body.cross_signed[0]);
      assertEquals(await issuerOf(cross, [h0, h1]), h0, "issued by the old key");
      assertEquals(await pemPin(body.cross_signed[0]), await pemPin(h1), "for the new key");
      await bot.renew();
      assertEquals(bot.hostCas, [h1, h0]);
    });

    await t.step("host: update_servers: the TLS certificate swaps without a restart", async () => {
      const pid = auth.proc.pid;
      await auth.phase("host", "update_servers");
      const h1Pin = await pemPin(h1);
      await eventually(async () => (await auth.servingPin()) === h1Pin, 15_000, "TLS swap");
      assertEquals(auth.proc.pid, pid);
      // The bot trusts both through its trust bundle; tctl through its rewritten identity.
      await bot.renew();
      const s = await auth.tctl("status");
      assertEquals(s.code, 0, s.stderr);
      assert(s.stdout.includes(`CA pin   ${h1Pin}\n`), s.stdout);
    });

    await t.step("host: standby drops the old key; a client trusting only it fails", async () => {
      await auth.phase("host", "standby");
      assertEquals(await auth.hostCas(), [h1]);
      const r = await bot.renew();
      assertEquals(r.trust_bundle!.host.tls_ca_certs, [h1]);
      const old = Deno.createHttpClient({ caCerts: [h0] });
      const err = await fetch(`${auth.proc.url}/v1/ping`, { client: old }).then(
        () => null,
        (e) => e,
      );
      old.close();
      assert(err !== null, "a client trusting only the dropped host CA still connected");
      // The admin identity file is rewritten on the instance's next CA check (about 1 s).
      await eventually(
        async () => (await auth.tctl("status")).code === 0,
        10_000,
        "tctl follows the host CA",
      );
      const s = await auth.ca("host");
      assertEquals([s.phase, s.keys.length, s.dropped_keys], ["standby", 1, 1]);
      assert(s.last_rotated !== undefined);
    });

    await t.step("user: certificates follow the phases; a dropped key's is refused", async () => {
      const [u0] = bot.last!.certificates.tls_ca_certs;
      await auth.phase("user", "init");
      let r = await bot.renew();
      assertEquals(r.certificates.tls_ca_certs.length, 2);
      assertEquals(r.certificates.ssh_ca_keys.length, 2);
      assertEquals(r.trust_bundle!.user.tls_ca_certs, r.certificates.tls_ca_certs);
      assertEquals(
        await issuerOf(certOf(r.certificates.tls_cert), r.certificates.tls_ca_certs),
        r.certificates.tls_ca_certs[0],
        "init: the old key signs",
      );
      await auth.phase("user", "update_clients");
      r = await bot.renew(); // presents an old-key certificate: still accepted
      const [u1, second] = r.certificates.tls_ca_certs;
      assertEquals(second, u0, "the old key stays trusted, listed second");
      assertEquals(await issuerOf(certOf(r.certificates.tls_cert), [u1, u0]), u1, "new key signs");
      await auth.phase("user", "update_servers");
      await bot.renew();
      await auth.phase("user", "standby");
      r = await bot.renew();
      assertEquals(r.certificates.tls_ca_certs, [u1]);
      // The admin identity file is rewritten on the instance's next CA check (about 1 s).
      await eventually(
        async () => (await auth.tctl("status")).code === 0,
        10_000,
        "tctl follows the user CA",
      );

      // The sleeper also slept through the host rotation; it moves its trust
      // through the cross-signed certificate (rot-agent's side, tested there).
      sleeper.hostCas = await auth.hostCas();
      // The sleeper's certificate (old key, still within its TTL) is refused plainly...
      const e = await rejectsCode(() => sleeper.renew(), "CA_KEY_DROPPED");
      assert(e instanceof KeyboundError && /rotation dropped/.test(e.message), e.message);
      // ...and it recovers once with its bound key, then refreshes normally.
      r = await sleeper.renew({ recover: true });
      assertEquals(await issuerOf(certOf(r.certificates.tls_cert), [u1]), u1);
      await sleeper.renew();
      const tokens = JSON.parse((await auth.tctl("tokens", "ls", "--format=json")).stdout);
      const count = (name: string) =>
        tokens.find((x: { metadata: { name: string } }) => x.metadata.name === name)
          .status.bound_keypair.recovery_count;
      assertEquals([count("b1"), count("b2")], [1, 2], "onboarding + exactly one recovery");
    });
  },
});

Deno.test({
  name: "rotation: rollback from update_servers restores the old key; exports list every key",
  sanitizeResources: false,
  async fn(t) {
    await using auth = await startRotationAuth();
    const bot = await auth.onboard("b1");
    const [h0] = await auth.hostCas();
    const h0Pin = await pemPin(h0);
    for (const phase of ["init", "update_clients"]) {
      await auth.phase("host", phase);
      await auth.phase("user", phase);
      await bot.renew();
    }
    await auth.phase("jwt", "init");
    await auth.phase("spiffe", "init");

    await t.step("exports: every trusted key, signing key first, in each format", async () => {
      const exp = async (...args: string[]) => {
        const r = await auth.tctl("auth", "export", ...args);
        assertEquals(r.code, 0, r.stderr);
        return r.stdout;
      };
      const hosts = (await exp("--type=host")).trim().split("\n");
      assertEquals(hosts.length, 2);
      assert(
        hosts.every((l) => /^@cert-authority \* ssh-ed25519 \S+ type=host$/.test(l)),
        hosts[0],
      );
      const users = (await exp("--type=user")).trim().split("\n");
      assertEquals(users.length, 2);
      assert(users.every((l) => /^ssh-ed25519 \S+$/.test(l)), users[0]);
      assertEquals(users, bot.last!.certificates.ssh_ca_keys.map((k) => k.trim()));
      assertEquals((await exp("--type=tls-user")).match(/BEGIN CERTIFICATE/g)?.length, 2);
      assertEquals(JSON.parse(await exp("--type=jwt")).keys.length, 2);
      assertEquals(JSON.parse(await exp("--type=bound_keypair")).keys.length, 1);
      assertEquals((await exp("--type=spiffe")).match(/BEGIN CERTIFICATE/g)?.length, 2);
      // Real OpenSSH reads both lines.
      const dir = await Deno.makeTempDir();
      try {
        await Deno.writeTextFile(`${dir}/ca.pub`, users.join("\n") + "\n");
        const out = await new Deno.Command("ssh-keygen", { args: ["-l", "-f", `${dir}/ca.pub`] })
          .output();
        assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
        assertEquals(new TextDecoder().decode(out.stdout).trim().split("\n").length, 2);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
      const bad = await auth.tctl("auth", "export", "--type=jwt", "--format=known_hosts");
      assert(bad.code !== 0 && /known_hosts/.test(bad.stderr), bad.stderr);
    });

    await t.step("host: rollback from update_servers serves the old key again", async () => {
      await auth.phase("host", "update_servers");
      const [h1] = await auth.hostCas();
      const h1Pin = await pemPin(h1);
      await eventually(async () => (await auth.servingPin()) === h1Pin, 15_000, "new TLS");
      await bot.renew();
      await auth.phase("host", "rollback");
      assertEquals(await auth.hostCas(), [h0, h1], "old key signs again, new still trusted");
      await eventually(async () => (await auth.servingPin()) === h0Pin, 15_000, "old TLS back");
      await bot.renew();
      const again = await auth.tctl(
        "auth",
        "rotate",
        "--type=host",
        "--manual",
        "--phase=update_servers",
      );
      assert(/ROTATION_PHASE_INVALID.*rollback/.test(again.stderr), again.stderr);
      await auth.phase("host", "standby");
      assertEquals(await auth.hostCas(), [h0], "the new key is dropped");
      const r = await bot.renew();
      assertEquals(r.trust_bundle!.host.tls_ca_certs, [h0]);
      const body = await (await bot.fetch(`${auth.proc.url}/v1/ca/host`)).json();
      assertEquals(body.cross_signed, undefined, "a rolled-back key is not cross-signed");
      const s = await auth.ca("host");
      assertEquals([s.phase, s.mode, s.last_rotated], ["standby", undefined, undefined]);
      assertEquals((await auth.tctl("status")).code, 0);
    });

    await t.step(
      "user: rollback from update_clients; certificates come from the old key",
      async () => {
        const [u1, u0] = bot.last!.certificates.tls_ca_certs;
        await auth.phase("user", "rollback");
        let r = await bot.renew(); // presents a new-key certificate: still trusted
        assertEquals(r.certificates.tls_ca_certs, [u0, u1]);
        assertEquals(await issuerOf(certOf(r.certificates.tls_cert), [u0, u1]), u0);
        await auth.phase("user", "standby");
        r = await bot.renew();
        assertEquals(r.certificates.tls_ca_certs, [u0]);
      },
    );
  },
});
