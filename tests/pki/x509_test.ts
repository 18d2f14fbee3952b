/**
 * X.509 issuing and parsing, checked against the real `openssl` binary.
 */
import assert from "node:assert/strict";
import { generateKeyPair, type KeyAlgorithm, type KeyPair } from "../../src/crypto/keys.ts";
import { BadParameterError } from "../../src/errors.ts";
import { fromHex, toHex } from "../../src/util/encoding.ts";
import {
  certificatesFromPem,
  certificateToPem,
  createSelfSignedCA,
  ecdsaDerToRaw,
  ecdsaRawToDer,
  issueCertificate,
  NAME_OIDS,
  type NameAttribute,
  parseCertificate,
  spkiPin,
  subjectKeyIdentifier,
  verifyCertificateSignature,
} from "../../src/pki/mod.ts";
import { ignoreWithout } from "../_tools.ts";

/** A test that runs openssl: ignored, saying why, outside CI without it. */
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test(name, { ignore: ignoreWithout("x509 tests checked by openssl", "openssl") }, fn);

const HOUR = 3600_000;

async function run(cmd: string, args: string[], stdin?: Uint8Array) {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: { TZ: "UTC" },
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function writePem(dir: string, name: string, ...ders: Uint8Array[]): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, ders.map(certificateToPem).join(""));
  return path;
}

/** openssl prints key identifiers as colon-separated uppercase hex. */
function opensslHex(b: Uint8Array): string {
  return toHex(b).toUpperCase().replace(/(..)(?=.)/g, "$1:");
}

interface Ca extends KeyPair {
  der: Uint8Array;
  subject: NameAttribute[];
}

async function makeCa(alg: KeyAlgorithm, cn = "Keybound test CA"): Promise<Ca> {
  const kp = await generateKeyPair(alg);
  const subject = [{ oid: NAME_OIDS.organization, value: "keybound.test" }, {
    oid: NAME_OIDS.commonName,
    value: cn,
  }];
  const now = Date.now();
  const der = await createSelfSignedCA({
    subject,
    keyPair: kp,
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + 24 * HOUR),
  });
  return { ...kp, der, subject };
}

function leafOptions(ca: Ca, publicKey: CryptoKey, suffix: string) {
  const now = Date.now();
  return {
    issuer: { subject: ca.subject, privateKey: ca.privateKey, publicKey: ca.publicKey },
    subject: [
      { oid: NAME_OIDS.commonName, value: `bot-${suffix}` },
      { oid: NAME_OIDS.organization, value: "bots" },
      { oid: NAME_OIDS.botName, value: `name-${suffix}` },
      { oid: NAME_OIDS.botInstanceId, value: crypto.randomUUID() },
      { oid: NAME_OIDS.generation, value: "7" },
    ],
    publicKey,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + HOUR),
    extKeyUsage: ["clientAuth", "serverAuth"] as ("clientAuth" | "serverAuth")[],
    dnsNames: [`${suffix}.bots.keybound.test`, "localhost"],
    ipAddresses: ["10.1.2.3", "2001:db8::17"],
    uris: [`spiffe://keybound.test/bot/${suffix}`],
  };
}

for (const caAlg of ["ES256", "EdDSA"] as const) {
  for (const leafAlg of ["ES256", "EdDSA"] as const) {
    test(`x509: ${caAlg} CA issues ${leafAlg} leaf accepted by openssl`, async () => {
      const dir = await Deno.makeTempDir();
      try {
        const ca = await makeCa(caAlg);
        const other = await makeCa(caAlg, "Other CA");
        const leafKey = await generateKeyPair(leafAlg);
        const opts = leafOptions(ca, leafKey.publicKey, `${caAlg}-${leafAlg}`.toLowerCase());
        const leafDer = await issueCertificate(opts);
        const caPem = await writePem(dir, "ca.pem", ca.der);
        const otherPem = await writePem(dir, "other.pem", other.der);
        const leafPem = await writePem(dir, "leaf.pem", leafDer);

        const ok = await run("openssl", ["verify", "-CAfile", caPem, leafPem]);
        assert.equal(ok.code, 0, ok.stderr + ok.stdout);
        assert.match(ok.stdout, /leaf\.pem: OK/);
        const wrong = await run("openssl", ["verify", "-CAfile", otherPem, leafPem]);
        assert.notEqual(wrong.code, 0, "a leaf must not verify against another CA");

        const text = (await run("openssl", ["x509", "-text", "-noout", "-in", leafPem])).stdout;
        assert.match(text, /Version: 3 \(0x2\)/);
        assert.match(
          text,
          new RegExp(`Signature Algorithm: ${caAlg === "ES256" ? "ecdsa-with-SHA256" : "ED25519"}`),
        );
        assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
        assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
        assert.match(text, /TLS Web Client Authentication, TLS Web Server Authentication/);
        for (const d of opts.dnsNames) assert.ok(text.includes(`DNS:${d}`), d);
        assert.ok(text.includes("IP Address:10.1.2.3"));
        assert.ok(text.includes("IP Address:2001:DB8:0:0:0:0:0:17"));
        assert.ok(text.includes(`URI:${opts.uris[0]}`));
        for (const a of opts.subject.slice(2)) {
          assert.ok(text.includes(`${a.oid} = ${a.value}`), a.oid);
        }
        assert.match(text, /Subject: CN = bot-[^,]+, O = bots, 1\.3\.9999\.2\.18 = /);

        const leaf = parseCertificate(leafDer);
        const caParsed = parseCertificate(ca.der);
        const ski = await subjectKeyIdentifier(leaf.spki);
        assert.deepEqual(leaf.subjectKeyId, ski);
        // RFC 5280 method 1, computed independently: SHA-1 of the raw public key.
        const rawKey = await crypto.subtle.exportKey("raw", leafKey.publicKey);
        assert.deepEqual(ski, new Uint8Array(await crypto.subtle.digest("SHA-1", rawKey)));
        assert.deepEqual(leaf.authorityKeyId, caParsed.subjectKeyId);
        assert.match(text, new RegExp(`Subject Key Identifier: \\n\\s+${opensslHex(ski)}`));
        assert.match(
          text,
          new RegExp(
            `Authority Key Identifier: \\n\\s+(keyid:)?${opensslHex(caParsed.subjectKeyId!)}`,
          ),
        );

        assert.deepEqual(leaf.subject, opts.subject);
        assert.deepEqual(leaf.issuer, ca.subject);
        assert.equal(leaf.notBefore.getTime(), Math.floor(opts.notBefore.getTime() / 1000) * 1000);
        assert.equal(leaf.notAfter.getTime(), Math.floor(opts.notAfter.getTime() / 1000) * 1000);
        assert.deepEqual(leaf.dnsNames, opts.dnsNames);
        assert.deepEqual(leaf.ipAddresses, ["10.1.2.3", "2001:db8::17"]);
        assert.deepEqual(leaf.uris, opts.uris);
        assert.deepEqual(leaf.extKeyUsage, ["clientAuth", "serverAuth"]);
        assert.equal(leaf.isCA, false);
        assert.equal(leaf.signatureAlgorithm, caAlg);
        assert.equal(leaf.signature.length, 64);
        assert.equal(await verifyCertificateSignature(leaf, ca.publicKey), true);
        assert.equal(await verifyCertificateSignature(leaf, other.publicKey), false);
        assert.equal(await verifyCertificateSignature(leaf, leafKey.publicKey), false);
        const pub = await leaf.publicKey();
        assert.deepEqual(new Uint8Array(await crypto.subtle.exportKey("spki", pub)), leaf.spki);

        // Serial: positive 128-bit, and what openssl reads.
        assert.equal(leaf.serialHex.length, 32);
        assert.ok(parseInt(leaf.serialHex[0], 16) < 8, "serial must be positive");
        const serial = await run("openssl", ["x509", "-serial", "-noout", "-in", leafPem]);
        assert.equal(serial.stdout.trim(), `serial=${leaf.serialHex.toUpperCase()}`);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
}

test("x509: self-signed CA has CA:TRUE, pathlen, SKI and no AKI", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const kp = await generateKeyPair("EdDSA");
    const der = await createSelfSignedCA({
      subject: [{ oid: NAME_OIDS.commonName, value: "root" }],
      keyPair: kp,
      notBefore: new Date(Date.now() - HOUR),
      notAfter: new Date(Date.now() + HOUR),
      pathLen: 0,
    });
    const path = await writePem(dir, "ca.pem", der);
    const text = (await run("openssl", ["x509", "-text", "-noout", "-in", path])).stdout;
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    assert.match(
      text,
      /X509v3 Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/,
    );
    assert.ok(!text.includes("Authority Key Identifier"));
    const ca = parseCertificate(der);
    assert.ok(text.includes(opensslHex(ca.subjectKeyId!)));
    assert.equal(ca.isCA, true);
    assert.equal(ca.pathLen, 0);
    assert.deepEqual(ca.keyUsage.sort(), ["cRLSign", "digitalSignature", "keyCertSign"]);
    assert.equal(await verifyCertificateSignature(ca, kp.publicKey), true);
    // openssl accepts it as its own trust anchor.
    const ok = await run("openssl", ["verify", "-CAfile", path, path]);
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("x509: issuer given as Name DER yields the same issuer bytes as attributes", async () => {
  const ca = await makeCa("ES256");
  const leafKey = await generateKeyPair("EdDSA");
  const opts = leafOptions(ca, leafKey.publicKey, "der");
  const viaAttrs = parseCertificate(await issueCertificate(opts));
  const viaDer = parseCertificate(
    await issueCertificate({
      ...opts,
      issuer: { ...opts.issuer, subject: parseCertificate(ca.der).subjectDer },
    }),
  );
  assert.deepEqual(viaDer.issuer, viaAttrs.issuer);
  assert.equal(await verifyCertificateSignature(viaDer, ca.publicKey), true);
  assert.notEqual(viaDer.serialHex, viaAttrs.serialHex, "default serials must be random");
});

Deno.test("x509: an issuer Name DER whose attribute value is constructed is refused, not copied", async () => {
  const ca = await makeCa("ES256");
  const leafKey = await generateKeyPair("EdDSA");
  const opts = leafOptions(ca, leafKey.publicKey, "constructed");
  // SEQUENCE { SET { SEQUENCE { OID 2.5.4.3, SEQUENCE { NULL } } } }
  const name = fromHex("300d310b3009060355040330020500");
  await assert.rejects(
    () => issueCertificate({ ...opts, issuer: { ...opts.issuer, subject: name } }),
    BadParameterError,
    "bad name attribute",
  );
  // The same Name with a primitive UTF8String "ca" is accepted.
  const ok = fromHex("300d310b30090603550403" + "0c026361");
  const cert = parseCertificate(
    await issueCertificate({ ...opts, issuer: { ...opts.issuer, subject: ok } }),
  );
  assert.deepEqual(cert.issuer.map((a) => a.value), ["ca"]);
});

test("x509: tampering breaks the signature for us and for openssl", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ca = await makeCa("ES256");
    const leafKey = await generateKeyPair("ES256");
    const der = await issueCertificate(leafOptions(ca, leafKey.publicKey, "tamper"));
    const leaf = parseCertificate(der);
    // Flip a byte inside the CN value, which keeps the DER well-formed.
    const at = toHex(der).indexOf(toHex(new TextEncoder().encode("bot-tamper"))) / 2;
    assert.ok(at > 0);
    const bad = new Uint8Array(der);
    bad[at] ^= 0x01;
    const parsed = parseCertificate(bad);
    assert.notDeepEqual(parsed.subject, leaf.subject);
    assert.equal(await verifyCertificateSignature(parsed, ca.publicKey), false);
    const caPem = await writePem(dir, "ca.pem", ca.der);
    const badPem = await writePem(dir, "bad.pem", bad);
    assert.notEqual((await run("openssl", ["verify", "-CAfile", caPem, badPem])).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** `der` with its outer SEQUENCE's length written in four bytes (valid BER, not DER). */
function berOuterHeader(der: Uint8Array): Uint8Array {
  const header = der[1] < 0x80 ? 2 : 2 + (der[1] & 0x7f);
  const n = der.length - header;
  return new Uint8Array([
    0x30,
    0x84,
    n >>> 24,
    (n >>> 16) & 0xff,
    (n >>> 8) & 0xff,
    n & 0xff,
    ...der.subarray(header),
  ]);
}

Deno.test("x509: garbage, truncated and padded DER throw BadParameterError", async () => {
  const ca = await makeCa("EdDSA");
  const cases = [
    new Uint8Array(0),
    new Uint8Array([0x30]),
    crypto.getRandomValues(new Uint8Array(300)),
    ca.der.subarray(0, ca.der.length - 1),
    ca.der.subarray(0, ca.der.length >> 1),
    new Uint8Array([...ca.der, 0]),
    new TextEncoder().encode(certificateToPem(ca.der)),
    new Uint8Array([0x30, 3, 2, 1, 5]), // a SEQUENCE, but not a certificate
    parseCertificate(ca.der).spki, // well-formed DER of another type
    // The outer header in BER (one length byte more than needed): the signature does not
    // cover it, so each such variant would otherwise pass as a distinct certificate.
    berOuterHeader(ca.der),
  ];
  for (const c of cases) assert.throws(() => parseCertificate(c), BadParameterError);
  // Sanity: the untouched certificate parses.
  assert.equal(parseCertificate(ca.der).isCA, true);
});

test("x509: spkiPin equals SHA-256 of the SPKI as openssl extracts it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const alg of ["ES256", "EdDSA"] as const) {
      const ca = await makeCa(alg);
      const path = await writePem(dir, `ca-${alg}.pem`, ca.der);
      const dgst = await run("sh", [
        "-c",
        `openssl x509 -pubkey -noout -in ${path} | openssl pkey -pubin -outform DER | openssl dgst -sha256 -r`,
      ]);
      const expected = "sha256:" + dgst.stdout.split(" ")[0];
      const parsed = parseCertificate(ca.der);
      assert.equal(await spkiPin(parsed), expected);
      assert.equal(await spkiPin(parsed.spki), expected);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("x509: PEM bundle round trip keeps order; no certificate throws", async () => {
  const a = await makeCa("ES256", "A");
  const b = await makeCa("EdDSA", "B");
  const bundle = certificateToPem(a.der) +
    "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n" +
    certificateToPem(b.der);
  const ders = certificatesFromPem(bundle);
  assert.equal(ders.length, 2);
  assert.deepEqual(ders[0], a.der);
  assert.deepEqual(ders[1], b.der);
  assert.throws(() => certificatesFromPem("nothing here"), BadParameterError);
});

test("x509: validity after 2049 uses GeneralizedTime and round-trips", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const kp = await generateKeyPair("EdDSA");
    const notBefore = new Date("2049-12-31T23:59:59Z");
    const notAfter = new Date("2051-06-01T12:34:56.789Z");
    const der = await createSelfSignedCA({
      subject: [{ oid: NAME_OIDS.commonName, value: "far future" }],
      keyPair: kp,
      notBefore,
      notAfter,
    });
    const text =
      (await run("openssl", ["x509", "-text", "-noout", "-in", await writePem(dir, "c.pem", der)]))
        .stdout;
    assert.match(text, /Not Before: Dec 31 23:59:59 2049 GMT/);
    assert.ok(text.includes("Not After : Jun  1 12:34:56 2051 GMT"), text);
    const asn1 = await run("openssl", ["asn1parse", "-inform", "DER"], der);
    assert.match(asn1.stdout, /UTCTIME\s+:491231235959Z/);
    assert.match(asn1.stdout, /GENERALIZEDTIME\s+:20510601123456Z/);
    const p = parseCertificate(der);
    assert.equal(p.notBefore.toISOString(), "2049-12-31T23:59:59.000Z");
    assert.equal(p.notAfter.toISOString(), "2051-06-01T12:34:56.000Z");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

test("x509: empty subject makes the SAN critical; custom serial is kept", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ca = await makeCa("ES256");
    const key = await generateKeyPair("EdDSA");
    const base = leafOptions(ca, key.publicKey, "nosubject");
    const der = await issueCertificate({
      ...base,
      subject: [],
      serial: new Uint8Array([0, 0, 0x80, 1]),
    });
    const text =
      (await run("openssl", ["x509", "-text", "-noout", "-in", await writePem(dir, "l.pem", der)]))
        .stdout;
    assert.match(text, /X509v3 Subject Alternative Name: critical/);
    assert.match(text, /Serial Number: 32769 \(0x8001\)/);
    const p = parseCertificate(der);
    assert.deepEqual(p.subject, []);
    assert.equal(p.serialHex, "8001");
    await assert.rejects(
      issueCertificate({ ...base, subject: [], dnsNames: [], ipAddresses: [], uris: [] }),
      BadParameterError,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("x509: bad options throw BadParameterError", async () => {
  const ca = await makeCa("EdDSA");
  const other = await generateKeyPair("EdDSA");
  const key = await generateKeyPair("ES256");
  const base = leafOptions(ca, key.publicKey, "bad");
  const bad = [
    { ...base, notAfter: base.notBefore },
    { ...base, pathLen: 1 },
    { ...base, ipAddresses: ["10.0.0.256"] },
    { ...base, ipAddresses: ["1::2::3"] },
    { ...base, ipAddresses: ["010.0.0.1"] },
    { ...base, uris: ["not a uri"] },
    { ...base, subject: [{ oid: "cn", value: "x" }] },
    { ...base, subject: [{ oid: NAME_OIDS.commonName, value: "" }] },
    { ...base, serial: new Uint8Array(21).fill(1) },
    { ...base, serial: new Uint8Array([0, 0]) },
    { ...base, issuer: { ...base.issuer, subject: new Uint8Array([0x30, 3, 1, 2, 3]) } },
    // Private key from one pair, public key from another, with the self-check on.
    { ...base, issuer: { ...base.issuer, publicKey: other.publicKey }, selfCheck: true },
  ];
  for (const o of bad) {
    await assert.rejects(issueCertificate(o), BadParameterError, JSON.stringify(o.subject));
  }
});

Deno.test("x509: the issuer self-check is opt-in; without it a mismatched pair goes unnoticed", async () => {
  const ca = await makeCa("EdDSA");
  const other = await generateKeyPair("EdDSA");
  const key = await generateKeyPair("ES256");
  const base = leafOptions(ca, key.publicKey, "mismatch");
  const der = await issueCertificate({
    ...base,
    issuer: { ...base.issuer, publicKey: other.publicKey },
  });
  // Signed by the CA's private key, so only the CA's real public key verifies it.
  assert.equal(await verifyCertificateSignature(parseCertificate(der), other.publicKey), false);
  await assert.rejects(
    issueCertificate({
      ...base,
      issuer: { ...base.issuer, publicKey: other.publicKey },
      selfCheck: true,
    }),
    BadParameterError,
    "does not match",
  );
});

test("x509: ECDSA r||s <-> DER conversion is exact at the edges", async () => {
  const cases: Uint8Array[] = [];
  const r = new Uint8Array(32);
  r[2] = 0x01; // two leading zero bytes
  const s = new Uint8Array(32).fill(0xff); // top bit set: needs a 0x00 pad
  cases.push(new Uint8Array([...r, ...s]), new Uint8Array([...s, ...r]));
  for (let i = 0; i < 20; i++) cases.push(crypto.getRandomValues(new Uint8Array(64)));
  for (const raw of cases) {
    const der = ecdsaRawToDer(raw);
    assert.deepEqual(ecdsaDerToRaw(der), raw);
    const asn1 = await run("openssl", ["asn1parse", "-inform", "DER"], der);
    const ints = [...asn1.stdout.matchAll(/INTEGER\s+:(-?[0-9A-F]+)/g)].map((m) => m[1]);
    const expect = (b: Uint8Array) => toHex(b).toUpperCase().replace(/^(00)+/, "") || "00";
    assert.deepEqual(ints, [expect(raw.subarray(0, 32)), expect(raw.subarray(32))]);
  }
  // Non-minimal, negative and trailing-garbage encodings are refused.
  const good = new Uint8Array([0x30, 6, 2, 1, 1, 2, 1, 1]);
  assert.deepEqual(ecdsaDerToRaw(good).subarray(30, 34), new Uint8Array([0, 1, 0, 0]));
  for (
    const bad of [
      [0x30, 7, 2, 2, 0, 1, 2, 1, 1], // non-minimal INTEGER
      [0x30, 6, 2, 1, 0x81, 2, 1, 1], // negative INTEGER
      [0x30, 7, 2, 1, 1, 2, 1, 1, 0], // trailing byte inside the SEQUENCE
      [0x30, 6, 2, 1, 1, 2, 1, 1, 0], // trailing byte after it
    ]
  ) assert.throws(() => ecdsaDerToRaw(new Uint8Array(bad)), BadParameterError, JSON.stringify(bad));
});

test("x509: certificates made by openssl parse and verify", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const keyArgs = {
      EdDSA: ["-newkey", "ed25519"],
      ES256: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    };
    for (const [alg, args] of Object.entries(keyArgs)) {
      const pem = `${dir}/${alg}.pem`;
      const made = await run("openssl", [
        "req",
        "-x509",
        ...args,
        "-nodes",
        "-keyout",
        `${dir}/${alg}.key`,
        "-out",
        pem,
        "-days",
        "2",
        "-subj",
        "/O=Open SSL/CN=made by openssl",
        "-addext",
        "subjectAltName=DNS:o.example,IP:192.0.2.9,IP:fe80::1,URI:urn:x:y",
        "-addext",
        "extendedKeyUsage=serverAuth",
      ]);
      assert.equal(made.code, 0, made.stderr);
      const [der] = certificatesFromPem(await Deno.readTextFile(pem));
      const p = parseCertificate(der);
      assert.equal(p.signatureAlgorithm, alg);
      assert.deepEqual(p.subject, [
        { oid: NAME_OIDS.organization, value: "Open SSL" },
        { oid: NAME_OIDS.commonName, value: "made by openssl" },
      ]);
      assert.deepEqual(p.issuer, p.subject);
      assert.deepEqual(p.dnsNames, ["o.example"]);
      assert.deepEqual(p.ipAddresses, ["192.0.2.9", "fe80::1"]);
      assert.deepEqual(p.uris, ["urn:x:y"]);
      assert.deepEqual(p.extKeyUsage, ["serverAuth"]);
      assert.equal(Math.round((p.notAfter.getTime() - p.notBefore.getTime()) / HOUR), 48);
      const serial = await run("openssl", ["x509", "-serial", "-noout", "-in", pem]);
      assert.equal(serial.stdout.trim(), `serial=${p.serialHex.toUpperCase()}`);
      assert.equal(await verifyCertificateSignature(p, await p.publicKey()), true);
      const stranger = await generateKeyPair(alg as KeyAlgorithm);
      assert.equal(await verifyCertificateSignature(p, stranger.publicKey), false);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("x509: hand-encoded TBS parts are canonical DER (re-encode identically) and read back", async () => {
  const { AsnConvert } = await import("@peculiar/asn1-schema");
  const { Certificate, SubjectPublicKeyInfo } = await import("@peculiar/asn1-x509");
  const ca = await generateKeyPair("ES256");
  for (const subjectAlg of ["ES256", "EdDSA"] as KeyAlgorithm[]) {
    const subjectKey = await generateKeyPair(subjectAlg);
    const subject: NameAttribute[] = [
      { oid: NAME_OIDS.commonName, value: "bot-ü 漢字" },
      { oid: NAME_OIDS.botInstanceId, value: "x".repeat(300) }, // long-form lengths
      { oid: "2.999.16384.1", value: "large arcs" }, // multi-byte base-128 arcs
    ];
    for (
      const [notBefore, notAfter] of [
        [new Date(Date.UTC(1950, 0, 1)), new Date(Date.UTC(2049, 11, 31, 23, 59, 59, 999))],
        [new Date(Date.UTC(1949, 11, 31)), new Date(Date.UTC(2050, 0, 1, 0, 0, 1, 5))],
      ]
    ) {
      const der = await issueCertificate({
        issuer: {
          subject: [{ oid: NAME_OIDS.organization, value: "ca" }],
          privateKey: ca.privateKey,
          publicKey: ca.publicKey,
        },
        subject,
        publicKey: subjectKey.publicKey,
        notBefore,
        notAfter,
      });
      const cert = AsnConvert.parse(der, Certificate);
      const again = new Uint8Array(AsnConvert.serialize(cert));
      assert.deepEqual(again, der);
      const parsed = parseCertificate(der);
      assert.deepEqual(parsed.subject, subject);
      assert.equal(parsed.notBefore.getTime(), Math.floor(notBefore.getTime() / 1000) * 1000);
      assert.equal(parsed.notAfter.getTime(), Math.floor(notAfter.getTime() / 1000) * 1000);
      const spki = AsnConvert.parse(
        AsnConvert.serialize(cert.tbsCertificate.subjectPublicKeyInfo),
        SubjectPublicKeyInfo,
      );
      const sha1 = new Uint8Array(await crypto.subtle.digest("SHA-1", spki.subjectPublicKey));
      assert.deepEqual(parsed.subjectKeyId, sha1);
    }
  }
});

Deno.test("x509: subjectKeyIdentifier equals WebCrypto SHA-1 of the key bits, and rejects what is no SPKI", async () => {
  const key = await generateKeyPair("ES256");
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", key.publicKey));
  const bits = spki.subarray(spki.length - 65);
  const expected = new Uint8Array(await crypto.subtle.digest("SHA-1", bits));
  assert.deepEqual(await subjectKeyIdentifier(spki), expected);
  const ed = await generateKeyPair("EdDSA");
  const edSpki = new Uint8Array(await crypto.subtle.exportKey("spki", ed.publicKey));
  const edBits = new Uint8Array(await crypto.subtle.exportKey("raw", ed.publicKey));
  assert.deepEqual(
    await subjectKeyIdentifier(edSpki),
    new Uint8Array(await crypto.subtle.digest("SHA-1", edBits)),
  );
  // A layout other than the canonical ones (a compressed point) goes through the parser.
  const point = new Uint8Array(33).fill(7);
  point[0] = 2;
  const compressed = new Uint8Array([
    ...spki.subarray(0, 23),
    0x03,
    0x22,
    0x00,
    ...point,
  ]);
  compressed[1] = compressed.length - 2;
  assert.deepEqual(
    await subjectKeyIdentifier(compressed),
    new Uint8Array(await crypto.subtle.digest("SHA-1", point)),
  );
  await assert.rejects(() => subjectKeyIdentifier(new Uint8Array([1, 2, 3])));
});
