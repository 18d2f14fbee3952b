/**
 * The bot's trust in the auth service across host CA rotations, with real
 * keys and signatures and the first contact injected (no sockets):
 * cross-signature acceptance and its refusals, the pin lineage that keeps a
 * moved trust, and {@linkcode HostTrust} following and healing.
 * tests/rotation/agent_*_test.ts run the same over real TLS and real daemons.
 *
 * @module
 */
import { MemoryStorage } from "../../src/agent/memory_storage.ts";
import { readText, STORAGE_FILES, writeText } from "../../src/agent/storage.ts";
import {
  CROSS_SIGNED_HEAL_WINDOW_MS,
  type FirstContact,
  hostCaText,
  HostTrust,
  learnCrossSignedCa,
  pinnedHostCas,
  readTrustBundle,
  splitPems,
  trustBundleFiles,
} from "../../src/agent/trust/mod.ts";
import { writeFilesTogether } from "../../src/agent/journal.ts";
import { certificatesFromPem, certificateToPem } from "../../src/pki/pem.ts";
import {
  issueCertificate,
  NAME_OIDS,
  parseCertificate,
  verifyCertificateSignature,
} from "../../src/pki/mod.ts";
import { derSequence, derTlv, ecdsaRawToDer } from "../../src/pki/der.ts";
import { decodeOid, readChildren, readTlv } from "../../src/pki/der_reader.ts";
import { sign } from "../../src/crypto/keys.ts";
import { KeyboundError } from "../../src/errors.ts";
import { silentLogger } from "../../src/util/log.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { crossSign, newCa, serverLeaf, type TestCa } from "./_host_cas.ts";

const URL = "https://127.0.0.1:3025";

/** A first contact that presents `leafOf`'s leaf and serves `served` with `cross`. */
async function contactOf(
  leafOf: TestCa,
  served: TestCa[],
  cross: string[] = [],
): Promise<{ contact: FirstContact; count: () => number }> {
  const leaf = await serverLeaf(leafOf);
  let n = 0;
  const contact: FirstContact = () => {
    n++;
    return Promise.resolve({
      leafDer: leaf.der,
      status: 200,
      body: JSON.stringify({
        tls_ca_certs: served.map((c) => c.pem),
        ssh_ca_keys: [],
        cross_signed: cross,
      }),
    });
  };
  return { contact, count: () => n };
}

Deno.test("cross-signed: a served host CA signed over by a trusted one is accepted", async () => {
  const [old, next] = await Promise.all([newCa("old"), newCa("new")]);
  const { contact } = await contactOf(next, [next], [await crossSign(old, next)]);
  assertEquals(await learnCrossSignedCa(URL, [old.pem], contact, new Date()), [next.pem]);
});

Deno.test("cross-signed: a chain over two rotations (old → mid → new) is followed", async () => {
  const [old, mid, next] = await Promise.all([newCa("old"), newCa("mid"), newCa("new")]);
  // Listed newest first: the order of the answer must not matter.
  const cross = [await crossSign(mid, next), await crossSign(old, mid)];
  const { contact } = await contactOf(next, [next], cross);
  assertEquals(await learnCrossSignedCa(URL, [old.pem], contact, new Date()), [next.pem]);
});

Deno.test("cross-signed: every served CA the chain reaches is kept, the leaf's signer first", async () => {
  const [old, next] = await Promise.all([newCa("old"), newCa("new")]);
  const { contact } = await contactOf(next, [old, next], [await crossSign(old, next)]);
  assertEquals(await learnCrossSignedCa(URL, [old.pem], contact, new Date()), [
    next.pem,
    old.pem,
  ]);
});

Deno.test("cross-signed: a served CA with a trusted key but not signed by it is not kept", async () => {
  const old = await newCa("old-host-ca");
  // The trusted key in a certificate someone on the path altered (one letter of its
  // subject): not signed by that key, so not saved as a trust root.
  const der = certificatesFromPem(old.pem)[0];
  const name = new TextEncoder().encode("old-host-ca");
  const at = der.findLastIndex((_, i) => name.every((b, j) => der[i + j] === b));
  if (at < 0) throw new Error("the CA's name is not in its certificate");
  der[at] ^= 0x01;
  const altered = { ...old, pem: certificateToPem(der) };
  const { contact } = await contactOf(old, [altered, old]);
  assertEquals(await learnCrossSignedCa(URL, [old.pem], contact, new Date()), [old.pem]);
});

Deno.test("cross-signed: a first contact reset before its request is made again, twice at most", async () => {
  const [old, next] = await Promise.all([newCa("old"), newCa("new")]);
  const { contact } = await contactOf(next, [next], [await crossSign(old, next)]);
  /** `contact`, failing with `code` the first `failures` times. */
  const failing = (
    failures: number,
    code: "CONNECTION_RESET_BEFORE_SEND" | "CONNECTION_FAILED",
  ) => {
    let calls = 0;
    const f: FirstContact = (url) =>
      ++calls <= failures ? Promise.reject(new KeyboundError(code, "lost")) : contact(url);
    return { f, calls: () => calls };
  };
  const twice = failing(2, "CONNECTION_RESET_BEFORE_SEND");
  assertEquals(await learnCrossSignedCa(URL, [old.pem], twice.f, new Date()), [next.pem]);
  assertEquals(twice.calls(), 3);
  const thrice = failing(3, "CONNECTION_RESET_BEFORE_SEND");
  const e = await assertRejects(
    () => learnCrossSignedCa(URL, [old.pem], thrice.f, new Date()),
    KeyboundError,
  );
  assertEquals([e.code, thrice.calls()], ["CONNECTION_RESET_BEFORE_SEND", 3]);
  // Any other failure may have reached the server: not made again.
  const other = failing(1, "CONNECTION_FAILED");
  await assertRejects(() => learnCrossSignedCa(URL, [old.pem], other.f, new Date()), KeyboundError);
  assertEquals(other.calls(), 1);
});

Deno.test("cross-signed: what is refused", async () => {
  const [old, next, attacker] = await Promise.all([newCa("old"), newCa("new"), newCa("evil")]);
  const refuse = async (contact: FirstContact, why: string, code = "TLS_UNTRUSTED") => {
    const e = await assertRejects(
      () => learnCrossSignedCa(URL, [old.pem], contact, new Date()),
      KeyboundError,
    );
    assertEquals(e.code, code, why);
  };
  await refuse((await contactOf(next, [next])).contact, "no cross-signature at all");
  await refuse(
    (await contactOf(attacker, [attacker], [await crossSign(attacker, attacker)])).contact,
    "a cross-signature by an untrusted key (self-issued)",
  );
  await refuse(
    (await contactOf(attacker, [attacker], [await crossSign(next, attacker)])).contact,
    "a cross-signature by a key that is itself not trusted",
  );
  await refuse(
    (await contactOf(attacker, [next], [await crossSign(old, next)])).contact,
    "the linked CA did not sign the server's leaf",
  );
  const expired = await crossSign(old, next, {
    notBefore: new Date(Date.now() - 3 * 86400_000),
    notAfter: new Date(Date.now() - 86400_000),
  });
  await refuse((await contactOf(next, [next], [expired])).contact, "an expired cross-signature");
  const notHttp: FirstContact = () =>
    Promise.resolve({ leafDer: new Uint8Array(), status: 404, body: "{}" });
  await refuse(notHttp, "not a host CA answer", "CONNECTION_FAILED");
});

Deno.test("pins: a trust moved by a rotation is kept while the config still names the old pin", async () => {
  const [old, next, other] = await Promise.all([newCa("old"), newCa("new"), newCa("other")]);
  const storage = new MemoryStorage();
  const first = await contactOf(old, [old]);
  assertEquals(await pinnedHostCas(URL, [old.pin], storage, first.contact), [old.pem]);
  assertEquals(await readText(storage, STORAGE_FILES.hostCaPins), `${old.pin}\n`);
  // A join result's trust bundle moves the trust to the new host CA only (after standby).
  await writeFilesTogether(storage, { [STORAGE_FILES.hostCa]: hostCaText([next.pem]) });
  const later = await contactOf(next, [next]);
  assertEquals(await pinnedHostCas(URL, [old.pin], storage, later.contact), [next.pem]);
  assertEquals(later.count(), 0, "no unverified contact: the saved trust descends from the pin");
  // A configuration naming another cluster's pin does not inherit that trust.
  const elsewhere = await contactOf(other, [other]);
  assertEquals(await pinnedHostCas(URL, [other.pin], storage, elsewhere.contact), [other.pem]);
  assertEquals(elsewhere.count(), 1);
});

Deno.test("pins: storage from before host_ca_pins gets its lineage recorded while provable", async () => {
  const [old, next] = await Promise.all([newCa("old"), newCa("new")]);
  const storage = new MemoryStorage();
  await writeText(storage, STORAGE_FILES.hostCa, hostCaText([next.pem, old.pem]));
  const none = await contactOf(next, [next]);
  assertEquals(await pinnedHostCas(URL, [old.pin], storage, none.contact), [next.pem, old.pem]);
  assertEquals(await readText(storage, STORAGE_FILES.hostCaPins), `${old.pin}\n`);
});

Deno.test("trust bundle files: host_ca.pem lists every host CA, the bundle is read back validated", async () => {
  const [old, next] = await Promise.all([newCa("old"), newCa("new")]);
  const bundle = {
    host: {
      tls_ca_certs: [next.pem, old.pem],
      ssh_ca_keys: ["ssh-ed25519 AAAA1", "ssh-ed25519 B"],
    },
    user: { tls_ca_certs: [old.pem], ssh_ca_keys: ["ssh-ed25519 C"] },
  };
  const storage = new MemoryStorage();
  const receivedAt = new Date("2026-12-01T10:00:00.000Z");
  await writeFilesTogether(storage, trustBundleFiles(bundle, receivedAt));
  assertEquals(splitPems(await readText(storage, STORAGE_FILES.hostCa)), [next.pem, old.pem]);
  assertEquals(await readTrustBundle(storage), { bundle, receivedAt });
  await writeText(storage, STORAGE_FILES.trustBundle, '{"host":{}}');
  assertEquals(await readTrustBundle(storage), null, "a damaged bundle is not used");
});

/** A transport that accepts the server only if its CA is among the pems (what TLS does). */
function transportTo(serverCa: () => TestCa, built: string[][]) {
  return (pems: string[]): typeof fetch => {
    built.push(pems);
    return () =>
      pems.includes(serverCa().pem)
        ? Promise.resolve(new Response("ok"))
        : Promise.reject(new KeyboundError("TLS_UNTRUSTED", "invalid peer certificate"));
  };
}

Deno.test("HostTrust: follows update(), heals once through a cross-signature, then stays", async () => {
  const [old, next] = await Promise.all([newCa("old"), newCa("new")]);
  let serving = old;
  const built: string[][] = [];
  const { contact, count } = await contactOf(next, [next], [await crossSign(old, next)]);
  const storage = new MemoryStorage();
  // The saved CAs were last confirmed by a trust bundle a day ago.
  await writeFilesTogether(
    storage,
    trustBundleFiles(bundleOf(old), new Date(Date.now() - 86400_000)),
  );
  const trust = new HostTrust({
    baseUrl: URL,
    storage,
    saved: [old.pem],
    fetchTrusting: transportTo(() => serving, built),
    firstContact: contact,
    now: () => new Date(),
    log: silentLogger,
  });
  assertEquals(await (await trust.fetch(URL)).text(), "ok");
  // A trust bundle during the rotation: both CAs; the server then switches (update_servers).
  trust.update([next.pem, old.pem]);
  serving = next;
  assertEquals(await (await trust.fetch(URL)).text(), "ok");
  assertEquals(count(), 0, "no unverified contact while the bot followed the rotation");
  assertEquals(built.length, 2);

  // Another bot slept through it: it trusts only the old CA; concurrent requests heal once.
  const sleeper = new HostTrust({
    baseUrl: URL,
    storage,
    saved: [old.pem],
    fetchTrusting: transportTo(() => serving, []),
    firstContact: contact,
    now: () => new Date(),
    log: silentLogger,
  });
  const answers = await Promise.all([sleeper.fetch(URL), sleeper.fetch(URL), sleeper.fetch(URL)]);
  assertEquals(await Promise.all(answers.map((r) => r.text())), ["ok", "ok", "ok"]);
  assertEquals(count(), 1, "one unverified contact for all requests");
  assertEquals(sleeper.hostCas, [next.pem]);
  assertEquals(splitPems(await readText(storage, STORAGE_FILES.hostCa)), [next.pem]);
});

Deno.test("HostTrust: a server no cross-signature vouches for stays refused", async () => {
  const [old, attacker] = await Promise.all([newCa("old"), newCa("evil")]);
  const { contact } = await contactOf(attacker, [attacker]);
  const storage = new MemoryStorage();
  await writeText(storage, STORAGE_FILES.hostCa, old.pem);
  const trust = new HostTrust({
    baseUrl: URL,
    storage,
    saved: [old.pem],
    fetchTrusting: transportTo(() => attacker, []),
    firstContact: contact,
    now: () => new Date(),
    log: silentLogger,
  });
  const e = await assertRejects(() => trust.fetch(URL), KeyboundError);
  assertEquals(e.code, "TLS_UNTRUSTED");
  assertEquals(await readText(storage, STORAGE_FILES.hostCa), old.pem, "storage unchanged");
});

Deno.test("HostTrust: an unchanged CA list (formatting aside) keeps the transport", async () => {
  const ca = await newCa("only");
  const built: string[][] = [];
  const trust = new HostTrust({
    baseUrl: URL,
    storage: new MemoryStorage(),
    saved: [ca.pem],
    fetchTrusting: transportTo(() => ca, built),
    firstContact: () => Promise.reject(new Error("not used")),
    now: () => new Date(),
    log: silentLogger,
  });
  trust.update([ca.pem.trimEnd()]);
  trust.update([ca.pem + "\n"]);
  assertEquals(built.length, 1, "one transport: nothing moved");
});

Deno.test("HostTrust: a failure the saved CAs do not explain (the server's CA is trusted) is not retried", async () => {
  const ca = await newCa("only");
  const { contact, count } = await contactOf(ca, [ca]);
  const storage = new MemoryStorage();
  const confirmed = trustBundleFiles(bundleOf(ca), new Date())[STORAGE_FILES.trustBundle];
  await writeText(storage, STORAGE_FILES.trustBundle, confirmed);
  let calls = 0;
  const trust = new HostTrust({
    baseUrl: URL,
    storage,
    saved: [ca.pem],
    fetchTrusting: () => () => {
      calls++;
      return Promise.reject(new KeyboundError("TLS_UNTRUSTED", "NotValidForName"));
    },
    firstContact: contact,
    now: () => new Date(),
    log: silentLogger,
  });
  const e = await assertRejects(() => trust.fetch(URL), KeyboundError);
  assertEquals([e.message, count(), calls], ["NotValidForName", 1, 1]);
  assertEquals(await readText(storage, STORAGE_FILES.hostCa), null, "nothing written");
});

function bundleOf(ca: TestCa) {
  return {
    host: { tls_ca_certs: [ca.pem], ssh_ca_keys: ["ssh-ed25519 AAAA1"] },
    user: { tls_ca_certs: [ca.pem], ssh_ca_keys: ["ssh-ed25519 AAAA2"] },
  };
}

Deno.test("HostTrust: no cross-signed heal once the saved CAs were confirmed too long ago, or never, or without a pin", async () => {
  const [old, next] = await Promise.all([newCa("old"), newCa("new")]);
  const { contact, count } = await contactOf(next, [next], [await crossSign(old, next)]);
  const sleeper = (storage: MemoryStorage, pinned = true) =>
    new HostTrust({
      baseUrl: URL,
      storage,
      saved: [old.pem],
      fetchTrusting: transportTo(() => next, []),
      ...(pinned ? { firstContact: contact } : {}),
      now: () => new Date(),
      log: silentLogger,
    });
  const refused = async (storage: MemoryStorage, why: string, pinned = true) => {
    const e = await assertRejects(() => sleeper(storage, pinned).fetch(URL), KeyboundError);
    assertEquals(e.code, "TLS_UNTRUSTED", why);
    assertEquals(splitPems(await readText(storage, STORAGE_FILES.hostCa)), [old.pem], why);
    return e;
  };
  const storageConfirmed = async (ago: number) => {
    const storage = new MemoryStorage();
    await writeFilesTogether(
      storage,
      trustBundleFiles(bundleOf(old), new Date(Date.now() - ago)),
    );
    return storage;
  };
  // A leaked old host key can mint a valid-looking cross-signature at any time: past the
  // window in which the real server still serves one, the bot asks for a re-pin instead.
  const late = await refused(
    await storageConfirmed(CROSS_SIGNED_HEAL_WINDOW_MS + 86400_000),
    "confirmed too long ago",
  );
  assertStringIncludes(late.message, "re-pin");
  const never = new MemoryStorage();
  await writeText(never, STORAGE_FILES.hostCa, old.pem);
  await refused(never, "never confirmed by a trust bundle");
  await refused(await storageConfirmed(86400_000), "a CA file or system roots: no heal", false);
  assertEquals(count(), 0, "no unverified contact was made");
  // Within the window the same sleeper heals.
  const recent = await storageConfirmed(86400_000);
  assertEquals(await (await sleeper(recent).fetch(URL)).text(), "ok");
  assertEquals(count(), 1);
});

/** `pem` without its extension `dropOid` (dotted), re-signed by `issuer`. */
async function resignedWithout(pem: string, issuer: TestCa, dropOid: string): Promise<string> {
  const fail = (what: string): never => {
    throw new Error(what);
  };
  const der = certificatesFromPem(pem)[0];
  const [tbs, alg] = readChildren(der, readTlv(der, 0, der.length, fail), fail);
  const fields = readChildren(der, tbs, fail);
  const last = fields[fields.length - 1];
  assertEquals(last.tag, 0xa3);
  const [list] = readChildren(der, last, fail);
  const exts = readChildren(der, list, fail).filter((e) => {
    const [id] = readChildren(der, e, fail);
    return decodeOid(der.subarray(id.content, id.end), fail) !== dropOid;
  }).map((e) => der.subarray(e.start, e.end));
  const newTbs = derSequence(
    ...fields.slice(0, -1).map((f) => der.subarray(f.start, f.end)),
    derTlv(0xa3, derSequence(...exts)),
  );
  const sig = ecdsaRawToDer(await sign(issuer.keyPair.privateKey, newTbs));
  return certificateToPem(derSequence(
    newTbs,
    der.subarray(alg.start, alg.end),
    derTlv(0x03, new Uint8Array([0, ...sig])),
  ));
}

// The heal reads cA with the DER walk of src/pki/cert_fields.ts, not the full parser: a
// certificate that is not a CA must not carry trust over, whichever way it says so.
Deno.test("cross-signed: a certificate without cA TRUE is not a CA, cross-signed or served", async () => {
  const [old, next] = await Promise.all([newCa("old"), newCa("new")]);
  const refuse = async (contact: FirstContact, why: string) => {
    const e = await assertRejects(
      () => learnCrossSignedCa(URL, [old.pem], contact, new Date()),
      KeyboundError,
    );
    assertEquals(e.code, "TLS_UNTRUSTED", why);
  };
  const BC = "2.5.29.19";
  // Issued by the trusted key for the new key, valid, but cA FALSE (Keybound's leaf form:
  // basicConstraints critical, an empty SEQUENCE), or without basicConstraints at all.
  const leafForm = certificateToPem(
    await issueCertificate({
      issuer: {
        subject: parseCertificate(certificatesFromPem(old.pem)[0]).subjectDer,
        privateKey: old.keyPair.privateKey,
        publicKey: old.keyPair.publicKey,
      },
      subject: [{ oid: NAME_OIDS.commonName, value: next.name }],
      publicKey: next.keyPair.publicKey,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86400_000),
    }),
  );
  assertEquals(parseCertificate(certificatesFromPem(leafForm)[0]).isCA, false);
  await refuse((await contactOf(next, [next], [leafForm])).contact, "cA FALSE");
  const noBc = await resignedWithout(await crossSign(old, next), old, BC);
  const parsed = parseCertificate(certificatesFromPem(noBc)[0]);
  assertEquals(parsed.isCA, false);
  assert(await verifyCertificateSignature(parsed, old.keyPair.publicKey), "re-signed by old");
  await refuse((await contactOf(next, [next], [noBc])).contact, "no basicConstraints");
  // The same certificate with cA TRUE is accepted: the two above fail on cA alone.
  const withCa = await resignedWithout(await crossSign(old, next), old, "2.5.29.15");
  assertEquals(
    await learnCrossSignedCa(
      URL,
      [old.pem],
      (await contactOf(next, [next], [withCa])).contact,
      new Date(),
    ),
    [next.pem],
  );
  // A served "CA" that is the trusted key's certificate without cA TRUE is not kept either.
  const oldNoCa = await resignedWithout(old.pem, old, BC);
  await refuse(
    (await contactOf(old, [{ ...old, pem: oldNoCa }])).contact,
    "a served certificate of a trusted key without cA",
  );
});
