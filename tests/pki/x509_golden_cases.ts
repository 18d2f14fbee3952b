/**
 * Certificates issued from fixed keys, serials and dates (Ed25519 issuer:
 * deterministic signatures), kept as DER in ./testdata/x509_golden.json. They
 * were made by the asn1-schema encoder that `issueCertificate` used before its
 * DER is written by hand (src/pki/der.ts): the encoder must keep every byte.
 * Regenerate only on purpose: `deno run -A tests/pki/x509_golden_cases.ts > tests/pki/testdata/x509_golden.json`.
 */
import { importPkcs8 } from "../../src/crypto/keys.ts";
import { issueCertificate, type IssueCertificateOptions, NAME_OIDS } from "../../src/pki/x509.ts";
import { fromHex, toHex } from "../../src/util/encoding.ts";

const ED25519_PKCS8 =
  "302e020100300506032b6570042204208a49835cdf9e48a857bd74d772c1a8a1c3ef120ca1e8e602c0cb75d653276633";
const P256_PKCS8 =
  "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b020101042077fc95dcd134ef307311a5" +
  "02640d3d69e8895b71ab45c0c85eb9b530f9bd3dc1a144034200041cb32520e31dd893257b99f3af7b9269bfbe1376" +
  "3c4f7bbe8e72d2293eaec0136cf03700f556f86584faf6867f80c71e0ee2969c8a271988bb3684c3429f8540";

/** The golden cases: name and options (the issuer is always the Ed25519 key). */
export async function goldenCases(): Promise<[string, IssueCertificateOptions][]> {
  const ca = await importPkcs8(fromHex(ED25519_PKCS8));
  const leaf = await importPkcs8(fromHex(P256_PKCS8));
  const caSubject = [
    { oid: NAME_OIDS.commonName, value: "golden CA" },
    { oid: NAME_OIDS.organization, value: "Keybound" },
  ];
  const issuer = { subject: caSubject, privateKey: ca.privateKey, publicKey: ca.publicKey };
  const serial = fromHex("0a1b2c3d4e5f");
  const notBefore = new Date("2026-01-01T00:00:00.123Z");
  const notAfter = new Date("2026-01-02T00:00:00Z");
  const caName = fromHex(
    "3027311230100603550403130967" + "6f6c64656e204341311130" + "0f060355040a0c084b6579626f756e64",
  );
  return [
    ["self-signed CA, pathLen 0, GeneralizedTime", {
      issuer,
      subject: caSubject,
      publicKey: ca.publicKey,
      notBefore,
      notAfter: new Date("2051-01-01T00:00:00Z"),
      isCA: true,
      pathLen: 0,
      serial,
    }],
    ["bot leaf: Teleport attributes, clientAuth", {
      issuer,
      subject: [
        { oid: NAME_OIDS.commonName, value: "bot-example" },
        { oid: NAME_OIDS.botName, value: "example" },
        { oid: NAME_OIDS.botInstanceId, value: "5f0c4b1e-9b1d-4c53-a5b8-0d0c2a7e1f10" },
        { oid: NAME_OIDS.generation, value: "3" },
      ],
      publicKey: leaf.publicKey,
      notBefore,
      notAfter,
      extKeyUsage: ["clientAuth"],
      serial,
    }],
    ["server leaf: SANs of each kind, both EKUs, issuer as Name DER", {
      issuer: { ...issuer, subject: caName },
      subject: [{ oid: NAME_OIDS.commonName, value: "auth" }],
      publicKey: leaf.publicKey,
      notBefore,
      notAfter,
      keyUsage: ["digitalSignature", "keyEncipherment"],
      extKeyUsage: ["serverAuth", "clientAuth"],
      dnsNames: ["auth.example", "localhost"],
      ipAddresses: ["127.0.0.1", "::1", "2001:db8::1", "::ffff:10.0.0.1"],
      uris: ["spiffe://example.org/bot/example"],
      serial: fromHex("00ff" + "ee".repeat(18)),
    }],
    ["empty subject: a critical SAN", {
      issuer,
      subject: [],
      publicKey: leaf.publicKey,
      notBefore: new Date("1949-12-31T23:59:59Z"),
      notAfter: new Date("2049-12-31T23:59:59Z"),
      uris: ["spiffe://example.org/svid"],
      keyUsage: ["keyAgreement"],
      serial: fromHex("7f"),
    }],
    ["intermediate CA: no pathLen, given key identifier, every key usage", {
      issuer: { ...issuer, keyIdentifier: fromHex("0102030405060708090a0b0c0d0e0f1011121314") },
      subject: [{ oid: NAME_OIDS.organizationalUnit, value: "b\u00f8t \u2603 " + "x".repeat(140) }],
      publicKey: leaf.publicKey,
      notBefore,
      notAfter: new Date("2050-01-01T00:00:00Z"),
      isCA: true,
      keyUsage: ["digitalSignature", "keyEncipherment", "keyAgreement", "keyCertSign", "cRLSign"],
      serial: fromHex("80"),
    }],
  ];
}

if (import.meta.main) {
  const out: Record<string, string> = {};
  for (const [name, options] of await goldenCases()) {
    out[name] = toHex(await issueCertificate(options));
  }
  console.log(JSON.stringify(out, null, 2));
}
