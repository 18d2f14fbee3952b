/**
 * The user CA's Ed25519 X.509 key against a real auth process (HTTP on
 * 127.0.0.1, Deno KV file, real tctl, real openssl): it signs the join
 * certificates of Ed25519 bots and only those; a bot switching between
 * P-256 and Ed25519 subject keys gets the matching signer each time;
 * `tls_ca_certs` of such a certificate verifies it under `openssl verify`
 * while the lists third parties read stay P-256; it rotates with its key set
 * through every phase and through a rollback, a certificate of a dropped
 * Ed25519 key answers `CA_KEY_DROPPED`, and a restarted process (empty
 * verified-certificate cache) verifies Ed25519 certificates itself. A
 * cluster whose stored user CA predates the key signs with P-256 until its
 * next user CA rotation brings one.
 *
 * @module
 */
import { KeyboundError } from "../../src/errors.ts";
import { CaResponse } from "../../src/protocol/discovery.ts";
import { NAME_OIDS } from "../../src/pki/mod.ts";
import { assert, assertEquals, assertNotEquals } from "../_assert.ts";
import { rejectsCode } from "../server/_join_fixture.ts";
import { pemPin, type RotationAuth, type RotationBot, startRotationAuth } from "./_auth.ts";
import {
  assertIssued,
  assertListsStayP256,
  certOf,
  opensslVerify,
  storeUserCaWithoutEd25519,
  userCas,
  userCaStandby,
} from "./_ed25519.ts";

/** An onboarded bot that has refreshed once with an Ed25519 subject key, and keeps to it. */
async function ed25519Bot(auth: RotationAuth, name: string): Promise<RotationBot> {
  const bot = await auth.onboard(name);
  bot.subjectAlg = "EdDSA";
  await bot.renew();
  return bot;
}

/** Asserts `bot`'s certificate is refused with `CA_KEY_DROPPED`, then that it recovers. */
async function assertDropped(bot: RotationBot): Promise<void> {
  const e = await rejectsCode(() => bot.renew(), "CA_KEY_DROPPED");
  assert(e instanceof KeyboundError && /rotation dropped/.test(e.message), e.message);
  await bot.renew({ recover: true });
}

Deno.test({
  name: "Ed25519 user CA: new cluster; signer per subject key, openssl, rotation, drop, restart",
  sanitizeResources: false,
  async fn(t) {
    await using auth = await startRotationAuth();
    const bot = await ed25519Bot(auth, "ed");
    const p256Bot = await auth.onboard("p256");
    const sleeper = await ed25519Bot(auth, "sleeper");
    const [p0] = await userCas(auth, "pem");
    const [e0] = await userCas(auth, "ed25519-pem");

    await t.step("standby: Ed25519 subject keys get the Ed25519 signer, others P-256", async () => {
      assert(e0, "a new cluster has the Ed25519 key");
      const ed = certOf(e0);
      assertEquals(ed.signatureAlgorithm, "EdDSA");
      assert(ed.isCA);
      const cn = (c: typeof ed) => c.subject.find((a) => a.oid === NAME_OIDS.commonName)?.value;
      assertEquals(cn(ed), "rotation.example Ed25519");
      assertNotEquals(ed.subjectDer, certOf(p0).subjectDer);
      assertEquals(
        ed.notAfter.getTime() - ed.notBefore.getTime(),
        certOf(p0).notAfter.getTime() - certOf(p0).notBefore.getTime(),
      );
      let r = await bot.renew();
      await assertIssued(r, e0, [e0], "Ed25519 bot");
      assertEquals(certOf(r.certificates.tls_cert).authorityKeyId, ed.subjectKeyId);
      // The trust bundle and the public CA list stay P-256: what third parties read.
      assertEquals(r.trust_bundle!.user.tls_ca_certs, [p0]);
      const served = CaResponse.parse(
        await (await bot.fetch(`${auth.proc.url}/v1/ca/user`)).json(),
      );
      assertEquals(served.tls_ca_certs, [p0]);
      r = await p256Bot.renew();
      await assertIssued(r, p0, [p0], "P-256 bot");
      await sleeper.renew();
      const status = await auth.ca("user");
      assertEquals(status.keys.length, 1);
      assertEquals(status.keys[0].tls_pin, await pemPin(p0));
      assertEquals(status.keys[0].tls_ed25519_pin, await pemPin(e0));
      assertEquals((await auth.ca("host")).keys[0].tls_ed25519_pin, undefined);
      const text = await auth.tctl("status");
      assert(text.stdout.includes(`ed25519 ${await pemPin(e0)}`), text.stdout);
    });

    await t.step("openssl verifies an Ed25519-issued identity with its tls_ca_certs", async () => {
      const v = await opensslVerify(bot.last!);
      assertEquals(v.code, 0, v.out);
      assert(/: OK/.test(v.out), v.out);
      // ...and not with the P-256 list (the check can fail).
      const wrong = await opensslVerify({
        ...bot.last!,
        certificates: { ...bot.last!.certificates, tls_ca_certs: [p0] },
      });
      assertNotEquals(wrong.code, 0, wrong.out);
    });

    await t.step("a bot switching P-256 ↔ Ed25519 gets the matching signer each time", async () => {
      p256Bot.subjectAlg = "EdDSA";
      await assertIssued(await p256Bot.renew(), e0, [e0], "to Ed25519");
      p256Bot.subjectAlg = "ES256";
      await assertIssued(await p256Bot.renew(), p0, [p0], "back to P-256");
      p256Bot.subjectAlg = "EdDSA";
      await assertIssued(await p256Bot.renew(), e0, [e0], "Ed25519 again");
    });

    await t.step("a restarted process verifies the Ed25519 certificate itself", async () => {
      await auth.restart();
      await assertIssued(await bot.renew(), e0, [e0], "after restart");
      await assertIssued(await p256Bot.renew(), e0, [e0], "after restart (switched bot)");
    });

    let e1 = "";
    await t.step("init: the old Ed25519 key signs, the new one is trusted", async () => {
      await auth.phase("user", "init");
      const ed = await userCas(auth, "ed25519-pem");
      assertEquals(ed.length, 2);
      assertEquals(ed[0], e0, "signing key first");
      e1 = ed[1];
      const r = await bot.renew();
      await assertIssued(r, e0, [e0, e1], "init");
      await assertListsStayP256(auth, bot, r, "init");
      assertEquals((await auth.ca("user")).keys[1].tls_ed25519_pin, await pemPin(e1));
    });

    await t.step(
      "update_clients: the new Ed25519 key signs; verified after a restart",
      async () => {
        await auth.phase("user", "update_clients");
        assertEquals(await userCas(auth, "ed25519-pem"), [e1, e0]);
        const r = await bot.renew();
        await assertIssued(r, e1, [e1, e0], "update_clients");
        await assertListsStayP256(auth, bot, r, "update_clients");
        await auth.restart();
        await assertIssued(await bot.renew(), e1, [e1, e0], "update_clients after restart");
      },
    );

    await t.step("update_servers, standby: the old Ed25519 key is dropped", async () => {
      await auth.phase("user", "update_servers");
      await assertIssued(await bot.renew(), e1, [e1, e0], "update_servers");
      await userCaStandby(auth);
      assertEquals(await userCas(auth, "ed25519-pem"), [e1]);
      await assertIssued(await bot.renew(), e1, [e1], "standby");
      // The sleeper holds a certificate of the dropped Ed25519 key.
      await assertDropped(sleeper);
      await assertIssued(sleeper.last!, e1, [e1], "sleeper after its recovery");
      // After a restart too: the dropped key is recognised from the stored record.
      const held = await ed25519Bot(auth, "held");
      await auth.phase("user", "init");
      await auth.phase("user", "update_clients");
      await bot.renew();
      await auth.phase("user", "update_servers");
      await userCaStandby(auth);
      await auth.restart();
      await assertDropped(held);
    });

    await t.step(
      "rollback: the Ed25519 key of the rolled-back set signs no more, then drops",
      async () => {
        const [before] = await userCas(auth, "ed25519-pem");
        await auth.phase("user", "init");
        const [, next] = await userCas(auth, "ed25519-pem");
        await auth.phase("user", "update_clients");
        const held = await ed25519Bot(auth, "held2");
        await assertIssued(held.last!, next, [next, before], "update_clients");
        await auth.phase("user", "rollback");
        await assertIssued(await bot.renew(), before, [before, next], "rollback");
        await userCaStandby(auth);
        assertEquals(await userCas(auth, "ed25519-pem"), [before]);
        await assertIssued(await bot.renew(), before, [before], "standby after rollback");
        await assertDropped(held);
      },
    );
  },
});

Deno.test({
  name: "Ed25519 user CA: a stored user CA without the key signs P-256 until a rotation brings it",
  sanitizeResources: false,
  async fn(t) {
    await using auth = await startRotationAuth();
    const bot = await auth.onboard("ed"); // a P-256 certificate, as an older version issued
    await auth.restart(() => storeUserCaWithoutEd25519(auth.dataDir));
    bot.subjectAlg = "EdDSA";
    const [p0] = await userCas(auth, "pem");

    await t.step("without the key: P-256 for every subject key; nothing shown", async () => {
      assertEquals(await userCas(auth, "ed25519-pem"), []);
      assertEquals((await auth.ca("user")).keys[0].tls_ed25519_pin, undefined);
      await assertIssued(await bot.renew(), p0, [p0], "Ed25519 bot, old record");
    });

    let p1 = "";
    let e1 = "";
    await t.step("init: the new set brings the key; the old set still signs P-256", async () => {
      await auth.phase("user", "init");
      [, p1] = await userCas(auth, "pem");
      [e1] = await userCas(auth, "ed25519-pem");
      assert(e1, "the additional set has the key");
      const keys = (await auth.ca("user")).keys;
      assertEquals(keys.map((k) => k.tls_ed25519_pin), [undefined, await pemPin(e1)]);
      await assertIssued(await bot.renew(), p0, [p0, p1], "init");
    });

    const held = await ed25519Bot(auth, "held");
    await t.step(
      "update_clients: the new set's Ed25519 key signs, also after a restart",
      async () => {
        await auth.phase("user", "update_clients");
        await assertIssued(await bot.renew(), e1, [e1], "update_clients");
        await assertIssued(await held.renew(), e1, [e1], "update_clients (held)");
        await auth.restart();
        await assertIssued(await bot.renew(), e1, [e1], "update_clients after restart");
      },
    );

    await t.step(
      "rollback: P-256 again; standby drops the key, its certificate is refused",
      async () => {
        await auth.phase("user", "rollback");
        await assertIssued(await bot.renew(), p0, [p0, p1], "rollback");
        await userCaStandby(auth);
        assertEquals(await userCas(auth, "ed25519-pem"), []);
        await assertIssued(await bot.renew(), p0, [p0], "standby after rollback");
        await assertDropped(held);
        await assertIssued(held.last!, p0, [p0], "held after its recovery");
      },
    );

    await t.step("a completed rotation keeps the key from then on", async () => {
      await auth.phase("user", "init");
      const [e2] = await userCas(auth, "ed25519-pem");
      await auth.phase("user", "update_clients");
      await assertIssued(await bot.renew(), e2, [e2], "update_clients");
      await auth.phase("user", "update_servers");
      await userCaStandby(auth);
      assertEquals(await userCas(auth, "ed25519-pem"), [e2]);
      await auth.restart();
      await assertIssued(await bot.renew(), e2, [e2], "standby after restart");
    });
  },
});
