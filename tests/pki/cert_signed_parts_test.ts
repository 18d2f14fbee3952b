/**
 * `readSignedParts` (the CA pin's check without the full parser) reads the
 * same signed bytes, signature algorithm, signature and SPKI as
 * `parseCertificate` on openssl-made chains (P-256 and Ed25519 CAs), and
 * refuses with `BadParameterError`, as the full parser does, what is
 * truncated, mutated, or outside the algorithms and encodings it accepts.
 */
import assert from "node:assert/strict";
import { importSpki, verify } from "../../src/crypto/keys.ts";
import { BadParameterError } from "../../src/errors.ts";
import { readSignedParts } from "../../src/pki/cert_fields.ts";
import { derOid, derSequence, derTlv } from "../../src/pki/der.ts";
import { readChildren, readTlv } from "../../src/pki/der_reader.ts";
import { parseCertificate, SIGNATURE_OIDS, verifyCertificateSignature } from "../../src/pki/mod.ts";
import { ignoreWithout } from "../_tools.ts";
import { opensslIssue, type OpensslKeyKind, opensslRequest } from "./_openssl.ts";

const ignore = ignoreWithout("signed parts checked on openssl certificates", "openssl");

/** A CA of `kind` ("ec" P-256 or "ed25519") and a leaf it signed, by openssl; DER. */
async function opensslChain(kind: OpensslKeyKind): Promise<{ ca: Uint8Array; leaf: Uint8Array }> {
  const dir = await Deno.makeTempDir();
  try {
    await opensslRequest(dir, "ca", kind, "pin CA");
    const ca = await opensslIssue(dir, "ca", {
      ca: null,
      days: 2,
      ext: "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n",
    });
    await opensslRequest(dir, "leaf", kind, "leaf");
    return { ca, leaf: await opensslIssue(dir, "leaf", { ca: "ca", days: 1 }) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const fail = (what: string): never => {
  throw new Error(what);
};

/** The certificate's three parts (TBS, signatureAlgorithm, signature BIT STRING), DER each. */
function split(der: Uint8Array): Uint8Array[] {
  return readChildren(der, readTlv(der, 0, der.length, fail), fail).map((t) =>
    der.subarray(t.start, t.end)
  );
}

Deno.test({
  name: "signed parts: the same as the full parser's on openssl P-256 and Ed25519 chains",
  ignore,
  fn: async () => {
    for (const kind of ["ec", "ed25519"] as const) {
      const chain = await opensslChain(kind);
      for (const der of [chain.ca, chain.leaf]) {
        const full = parseCertificate(der);
        const parts = readSignedParts(der);
        assert.deepEqual(parts.tbs, full.tbs, kind);
        assert.equal(parts.signatureAlgorithm, full.signatureAlgorithm, kind);
        assert.deepEqual(parts.signature, full.signature, kind);
        assert.deepEqual(parts.spki, full.spki, kind);
      }
      assert.equal(
        readSignedParts(chain.leaf).signatureAlgorithm,
        kind === "ec" ? "ES256" : "EdDSA",
      );
      // The pin path's check, with WebCrypto: the CA signed the leaf, another CA did not.
      const leaf = readSignedParts(chain.leaf);
      const caKey = await importSpki(readSignedParts(chain.ca).spki);
      assert.equal(await verify(caKey, leaf.signature, leaf.tbs), true, kind);
      assert.equal(await verifyCertificateSignature(parseCertificate(chain.leaf), caKey), true);
      const other = await importSpki(readSignedParts((await opensslChain(kind)).ca).spki);
      assert.equal(await verify(other, leaf.signature, leaf.tbs), false, kind);
    }
  },
});

Deno.test({
  name:
    "signed parts: truncated and mutated DER is refused with BadParameterError, never a TypeError",
  ignore,
  fn: async () => {
    for (const kind of ["ec", "ed25519"] as const) {
      const { leaf } = await opensslChain(kind);
      for (let n = 0; n < leaf.length; n++) {
        assert.throws(
          () => readSignedParts(leaf.subarray(0, n)),
          BadParameterError,
          `${kind} ${n}`,
        );
      }
      assert.throws(() => readSignedParts(new Uint8Array([...leaf, 0])), BadParameterError);
      // Every byte changed: either still a readable certificate or refused with the one error.
      for (let i = 0; i < leaf.length; i++) {
        for (const x of [0x01, 0x80, 0xff]) {
          const m = new Uint8Array(leaf);
          m[i] ^= x;
          try {
            readSignedParts(m);
          } catch (e) {
            assert.ok(e instanceof BadParameterError, `${kind} byte ${i} ^ ${x}: ${e}`);
          }
        }
      }
    }
  },
});

Deno.test({
  name:
    "signed parts: algorithm parameters, mismatched algorithms, unknown algorithms and bad signature encodings are refused",
  ignore,
  fn: async () => {
    const ec = await opensslChain("ec");
    const ed = await opensslChain("ed25519");
    const [ecTbs, ecAlg, ecSig] = split(ec.leaf);
    const [edTbs, edAlg, edSig] = split(ed.leaf);
    const refused = (tbs: Uint8Array, alg: Uint8Array, sig: Uint8Array) =>
      assert.throws(() => readSignedParts(derSequence(tbs, alg, sig)), BadParameterError);
    // The reassembly itself reads.
    assert.deepEqual(readSignedParts(derSequence(ecTbs, ecAlg, ecSig)), readSignedParts(ec.leaf));
    const NULL = new Uint8Array([0x05, 0x00]);
    refused(edTbs, derSequence(derOid(SIGNATURE_OIDS.EdDSA), NULL), edSig); // RFC 8410: absent
    refused(ecTbs, derSequence(derOid(SIGNATURE_OIDS.ES256), NULL), ecSig);
    refused(ecTbs, edAlg, ecSig); // outer differs from the TBSCertificate's
    refused(edTbs, ecAlg, edSig);
    // ECDSA with SHA-384, RSA with SHA-256: not what Keybound accepts today.
    refused(ecTbs, derSequence(derOid("1.2.840.10045.4.3.3")), ecSig);
    refused(ecTbs, derSequence(derOid("1.2.840.113549.1.1.11"), NULL), ecSig);
    // A BIT STRING's content: the unused-bits octet, then the signature.
    const bits = (sig: Uint8Array) => sig.subarray(readTlv(sig, 0, sig.length, fail).content);
    refused(edTbs, edAlg, derTlv(0x03, new Uint8Array([1, ...bits(edSig).subarray(1)]))); // unused bits
    refused(edTbs, edAlg, derTlv(0x03, new Uint8Array()));
    refused(edTbs, edAlg, derTlv(0x03, bits(edSig).subarray(0, 64))); // 63-byte Ed25519 signature
    refused(ecTbs, ecAlg, derTlv(0x03, new Uint8Array([0, 0x30, 0x00]))); // not an ECDSA-Sig-Value
  },
});
