/**
 * `readCertificateFields` (the DER walk of start-up and renewal) reads the
 * same validity, subject and SPKI as the full parser, on certificates Keybound
 * issues and on ones openssl makes (v1 without extensions, UTCTime and
 * GeneralizedTime, PrintableString, UTF8String and IA5String attributes,
 * a multi-valued RDN); it refuses what is not a certificate or not DER. `identityFromJoin` builds an identity
 * from a join result without the full parser and refuses a certificate for
 * another key.
 */
import assert from "node:assert/strict";
import { exportSpki, generateKeyPair } from "../../src/crypto/keys.ts";
import { BadServerResponseError, isKeyboundError } from "../../src/errors.ts";
import { readCertificateFields, readValidityAndSpki } from "../../src/pki/cert_fields.ts";
import {
  certificatesFromPem,
  certificateToPem,
  createSelfSignedCA,
  issueCertificate,
  NAME_OIDS,
  parseCertificate,
} from "../../src/pki/mod.ts";
import { identityFromJoin } from "../../src/agent/identity.ts";
import { toHex } from "../../src/util/encoding.ts";
import type { JoinResult } from "../../src/protocol/messages.ts";

const HOUR = 3600_000;

function assertSameFields(der: Uint8Array) {
  const full = parseCertificate(der);
  const fields = readCertificateFields(der);
  assert.equal(fields.notBefore.toISOString(), full.notBefore.toISOString());
  assert.equal(fields.notAfter.toISOString(), full.notAfter.toISOString());
  assert.deepEqual(fields.spki, full.spki);
  assert.deepEqual(fields.subject, full.subject);
  assert.ok(fields.subject.length > 0);
  // The renewal's walk: the same fields without the subject.
  const { subject: _subject, ...rest } = fields;
  assert.deepEqual(readValidityAndSpki(der), rest);
}

async function openssl(args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, stdout: "null", stderr: "piped" }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
}

Deno.test("cert fields: same validity, subject and SPKI as the full parser, Keybound and openssl certificates", async () => {
  const ca = await generateKeyPair("ES256");
  const caSubject = [{ oid: NAME_OIDS.commonName, value: "fields CA" }];
  const caDer = await createSelfSignedCA({
    subject: caSubject,
    keyPair: ca,
    notBefore: new Date(Date.now() - HOUR),
    notAfter: new Date("2051-06-01T12:34:56Z"), // GeneralizedTime
  });
  assertSameFields(caDer);
  for (const alg of ["ES256", "EdDSA"] as const) {
    const leaf = await generateKeyPair(alg);
    const der = await issueCertificate({
      issuer: { subject: caSubject, privateKey: ca.privateKey, publicKey: ca.publicKey },
      subject: [
        { oid: NAME_OIDS.commonName, value: "bot-ü 漢字" },
        { oid: NAME_OIDS.botName, value: "leaf" },
        { oid: NAME_OIDS.botInstanceId, value: "x".repeat(300) }, // long-form lengths
        { oid: NAME_OIDS.generation, value: "12" },
        { oid: "2.999.16384.1", value: "large arcs" },
      ],
      publicKey: leaf.publicKey,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + HOUR),
      dnsNames: ["leaf.example"],
    });
    assertSameFields(der);
    assert.deepEqual(readCertificateFields(der).spki, await exportSpki(leaf.publicKey));
  }
  const dir = await Deno.makeTempDir();
  try {
    // A v3 certificate with extensions, and a v1 one without the [0] version field.
    await openssl([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      `${dir}/k`,
      "-out",
      `${dir}/v3.pem`,
      "-days",
      "2",
      "-subj",
      "/C=DE/O=Ex+OU=Multi/CN=v3/emailAddress=ops@example.org",
      "-multivalue-rdn",
    ]);
    await openssl(["req", "-new", "-key", `${dir}/k`, "-subj", "/CN=v1", "-out", `${dir}/csr`]);
    await openssl([
      "x509",
      "-req",
      "-in",
      `${dir}/csr`,
      "-key",
      `${dir}/k`,
      "-days",
      "1",
      "-out",
      `${dir}/v1.pem`,
    ]);
    for (const name of ["v3", "v1"]) {
      const [der] = certificatesFromPem(await Deno.readTextFile(`${dir}/${name}.pem`));
      assertSameFields(der);
    }
    const [v1] = certificatesFromPem(await Deno.readTextFile(`${dir}/v1.pem`));
    assert.equal(parseCertificate(v1).version, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cert fields: what is not a certificate is a BadServerResponseError (it came from the server)", async () => {
  const kp = await generateKeyPair("EdDSA");
  const der = await createSelfSignedCA({
    subject: [{ oid: NAME_OIDS.commonName, value: "x" }],
    keyPair: kp,
    notBefore: new Date(Date.now() - HOUR),
    notAfter: new Date(Date.now() + HOUR),
  });
  const bad = [
    new Uint8Array(),
    new Uint8Array([0x30]),
    der.subarray(0, der.length - 1), // truncated
    new Uint8Array([...der, 0]), // trailing byte
    new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]), // a SEQUENCE that is no certificate
    new Uint8Array([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), // length past the end
    new Uint8Array([0x30, 0x81, 0x03, 0x02, 0x01, 0x01]), // BER: long form for a short length
    new Uint8Array([0x30, 0x82, 0x00, 0x03, 0x02, 0x01, 0x01]), // BER: leading zero length byte
  ];
  for (const b of bad) {
    assert.throws(() => readCertificateFields(b), BadServerResponseError);
    assert.throws(() => readValidityAndSpki(b), BadServerResponseError);
  }
});

Deno.test("identityFromJoin: fields from the result, validity from the certificate, key checked", async () => {
  const ca = await generateKeyPair("ES256");
  const caSubject = [{ oid: NAME_OIDS.commonName, value: "user CA" }];
  const subjectKey = await generateKeyPair("ES256");
  const notAfter = new Date(Math.floor((Date.now() + HOUR) / 1000) * 1000);
  const issue = (publicKey: CryptoKey) =>
    issueCertificate({
      issuer: { subject: caSubject, privateKey: ca.privateKey, publicKey: ca.publicKey },
      subject: [{ oid: NAME_OIDS.commonName, value: "bot-b" }],
      publicKey,
      notBefore: new Date(notAfter.getTime() - 2 * HOUR),
      notAfter,
    });
  const result = (der: Uint8Array): JoinResult => ({
    bot_name: "b",
    bot_instance_id: "11111111-2222-4333-8444-555555555555",
    generation: 9,
    expires: notAfter.toISOString(),
    certificates: {
      tls_cert: certificateToPem(der),
      tls_ca_certs: [],
      ssh_cert: "ssh-ed25519-cert-v01@openssh.com AAAA",
      ssh_ca_keys: [],
    },
    bound_keypair: { join_state: "s", public_key: "ssh-ed25519 AAAA" },
  });
  const stored = { ...subjectKey, stored: "PEM" };
  const id = await identityFromJoin(result(await issue(subjectKey.publicKey)), stored);
  assert.equal(id.botName, "b");
  assert.equal(id.botInstanceId, "11111111-2222-4333-8444-555555555555");
  assert.equal(id.generation, 9);
  assert.equal(id.notAfter.toISOString(), notAfter.toISOString());
  assert.match(id.publicKeySsh, /^ecdsa-sha2-nistp256 /);

  const other = await generateKeyPair("ES256");
  const foreign = result(await issue(other.publicKey));
  await assert.rejects(
    () => identityFromJoin(foreign, stored),
    (e: unknown) => isKeyboundError(e, "BAD_SERVER_RESPONSE"),
  );
  const noCert = result(await issue(subjectKey.publicKey));
  noCert.certificates.tls_cert = "not a PEM certificate";
  await assert.rejects(
    () => identityFromJoin(noCert, stored),
    (e: unknown) => isKeyboundError(e, "BAD_SERVER_RESPONSE"),
  );
});

Deno.test("cert fields: impossible validity times are refused, not rolled over into other dates", async () => {
  const kp = await generateKeyPair("EdDSA");
  const notAfter = new Date("2026-06-01T00:00:00Z");
  const der = await createSelfSignedCA({
    subject: [{ oid: NAME_OIDS.commonName, value: "times" }],
    keyPair: kp,
    notBefore: new Date("2026-01-01T00:00:00Z"),
    notAfter,
  });
  const text = new TextEncoder().encode("260601000000Z");
  const at = toHex(der).indexOf(toHex(text)) / 2;
  assert.ok(at > 0);
  assert.equal(readCertificateFields(der).notAfter.toISOString(), notAfter.toISOString());
  for (
    const bad of [
      "261301000000Z",
      "260632000000Z",
      "260230000000Z",
      "260601240000Z",
      "260601006000Z",
      "260601000060Z",
      "269999999999Z",
    ]
  ) {
    const copy = new Uint8Array(der);
    copy.set(new TextEncoder().encode(bad), at);
    assert.throws(() => readCertificateFields(copy), BadServerResponseError, bad);
  }
  // A leap day is a date.
  const leap = new Uint8Array(der);
  leap.set(new TextEncoder().encode("280229235959Z"), at);
  assert.equal(readCertificateFields(leap).notAfter.toISOString(), "2028-02-29T23:59:59.000Z");
});

Deno.test("der reader: object identifiers decode, a 256-byte one is refused", async () => {
  const { decodeOid } = await import("../../src/pki/der_reader.ts");
  const fail = (what: string): never => {
    throw new Error(what);
  };
  assert.equal(decodeOid(new Uint8Array([0x2b, 0xce, 0x0f, 0x02, 0x12]), fail), "1.3.9999.2.18");
  assert.equal(decodeOid(new Uint8Array([0x88, 0x37, 0x01]), fail), "2.999.1");
  const long = new Uint8Array(256).fill(0x81);
  long[255] = 0x01;
  assert.throws(() => decodeOid(long, fail), /too long/);
});
