/**
 * `readCaCandidate` (what the cross-signed heal reads without the full
 * parser): on real certificates (openssl's and Keybound's) it reads the same
 * basicConstraints cA, validity, signed bytes and SPKI as `parseCertificate`;
 * malformed extensions are refused with `BadParameterError`, where the full
 * parser refuses them and, for DER the full parser lets through, too.
 */
import assert from "node:assert/strict";
import { generateKeyPair } from "../../src/crypto/keys.ts";
import { BadParameterError } from "../../src/errors.ts";
import { readCaCandidate } from "../../src/pki/cert_fields.ts";
import { DER_TRUE, derOid, derSequence, derTlv, derUnsigned } from "../../src/pki/der.ts";
import { readChildren, readTlv } from "../../src/pki/der_reader.ts";
import {
  createSelfSignedCA,
  issueCertificate,
  NAME_OIDS,
  parseCertificate,
} from "../../src/pki/mod.ts";
import { ignoreWithout } from "../_tools.ts";
import { opensslIssue, opensslRequest } from "./_openssl.ts";

const ignore = ignoreWithout("basicConstraints read from openssl certificates", "openssl");

/**
 * A P-256 CA (`basicConstraints=critical,CA:TRUE,pathlen:0`) and leaves it
 * signed with the extensions given (`-extfile` text; `null`: openssl's
 * defaults), all by openssl; DER.
 */
async function opensslCerts(leaves: Record<string, string | null>) {
  const dir = await Deno.makeTempDir();
  try {
    await opensslRequest(dir, "ca", "ec", "ca");
    const out: Record<string, Uint8Array> = {
      ca: await opensslIssue(dir, "ca", {
        ca: null,
        days: 2,
        ext: "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\n",
      }),
    };
    for (const [name, ext] of Object.entries(leaves)) {
      await opensslRequest(dir, name, "ec", name);
      out[name] = await opensslIssue(dir, name, {
        ca: "ca",
        days: 1,
        ...(ext === null ? {} : { ext }),
      });
    }
    return out;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts the light reader and the full parser read the same of `der`; returns cA. */
function sameAsFullParser(der: Uint8Array, what: string): boolean {
  const full = parseCertificate(der);
  const light = readCaCandidate(der);
  assert.equal(light.isCA, full.isCA, what);
  assert.deepEqual(light.notBefore, full.notBefore, what);
  assert.deepEqual(light.notAfter, full.notAfter, what);
  assert.deepEqual(light.tbs, full.tbs, what);
  assert.deepEqual(light.spki, full.spki, what);
  assert.deepEqual(light.signature, full.signature, what);
  return light.isCA;
}

Deno.test({
  name: "CA candidate: cA as the full parser reads it, on openssl and Keybound certificates",
  ignore,
  fn: async () => {
    const certs = await opensslCerts({
      leafFalse: "basicConstraints=CA:FALSE\n",
      leafCriticalFalse: "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
      leafNoBc: "subjectAltName=DNS:auth.example\n",
      leafNoExt: null,
      subCa: "basicConstraints=critical,CA:TRUE\n",
    });
    const expected: Record<string, boolean> = {
      ca: true,
      leafFalse: false,
      leafCriticalFalse: false,
      leafNoBc: false,
      leafNoExt: false,
      subCa: true,
    };
    for (const [name, der] of Object.entries(certs)) {
      assert.equal(sameAsFullParser(der, name), expected[name], name);
    }
    // Keybound's own: a self-signed CA (cA TRUE, critical) and a leaf (an empty SEQUENCE).
    const caKey = await generateKeyPair("ES256");
    const now = Date.now();
    const validity = { notBefore: new Date(now - 60_000), notAfter: new Date(now + 3600_000) };
    const ca = await createSelfSignedCA({
      subject: [{ oid: NAME_OIDS.commonName, value: "kb" }],
      keyPair: caKey,
      ...validity,
    });
    const leaf = await issueCertificate({
      issuer: {
        subject: parseCertificate(ca).subjectDer,
        privateKey: caKey.privateKey,
        publicKey: caKey.publicKey,
      },
      subject: [{ oid: NAME_OIDS.commonName, value: "leaf" }],
      publicKey: (await generateKeyPair("EdDSA")).publicKey,
      ...validity,
    });
    assert.equal(sameAsFullParser(ca, "keybound ca"), true);
    assert.equal(sameAsFullParser(leaf, "keybound leaf"), false);
  },
});

const fail = (what: string): never => {
  throw new Error(what);
};

/** `der` (a v3 certificate) with its TBS extensions replaced by `exts` (null: none) and
 * its version by `version` (null: absent); the signature no longer matches, which
 * neither reader checks. */
function withExtensions(
  der: Uint8Array,
  exts: Uint8Array[] | null,
  version: Uint8Array | null = derTlv(0xa0, derUnsigned(2)),
): Uint8Array {
  const [tbs, alg, sig] = readChildren(der, readTlv(der, 0, der.length, fail), fail);
  const fields = readChildren(der, tbs, fail).map((t) => der.subarray(t.start, t.end));
  const [, ...rest] = fields; // the [0] version
  const body = rest.slice(0, 6);
  const rebuilt = derSequence(
    ...(version ? [version] : []),
    ...body,
    ...(exts ? [derTlv(0xa3, derSequence(...exts))] : []),
  );
  return derSequence(
    rebuilt,
    der.subarray(alg.start, alg.end),
    der.subarray(sig.start, sig.end),
  );
}

const BC = "2.5.29.19";
const ext = (oid: string, value: Uint8Array, critical?: Uint8Array) =>
  derSequence(derOid(oid), ...(critical ? [critical] : []), derTlv(0x04, value));
const FALSE = new Uint8Array([0x01, 0x01, 0x00]);
const BER_TRUE = new Uint8Array([0x01, 0x01, 0x01]);

Deno.test({
  name: "CA candidate: malformed extensions are refused (BadParameterError), never read as a CA",
  ignore,
  fn: async () => {
    const { ca } = await opensslCerts({});
    const caBc = ext(BC, derSequence(DER_TRUE), DER_TRUE);
    const ku = ext("2.5.29.15", new Uint8Array([0x03, 0x02, 0x02, 0x04]), DER_TRUE);
    // The reassembly itself reads as the original does.
    assert.equal(sameAsFullParser(withExtensions(ca, [caBc, ku]), "reassembled"), true);
    assert.equal(sameAsFullParser(withExtensions(ca, [ku]), "no basicConstraints"), false);
    assert.equal(sameAsFullParser(withExtensions(ca, null, null), "v1, no extensions"), false);

    const refusedByBoth: [string, Uint8Array][] = [
      ["basicConstraints twice", withExtensions(ca, [caBc, ku, caBc])],
      ["extensions in a v1 certificate", withExtensions(ca, [caBc], null)],
      ["basicConstraints not a SEQUENCE", withExtensions(ca, [ext(BC, DER_TRUE, DER_TRUE)])],
      ["an extension without its value", withExtensions(ca, [derSequence(derOid(BC), DER_TRUE)])],
      [
        "extnValue not an OCTET STRING",
        withExtensions(ca, [
          derSequence(derOid(BC), DER_TRUE, derSequence(DER_TRUE)),
        ]),
      ],
    ];
    for (const [what, der] of refusedByBoth) {
      assert.throws(() => parseCertificate(der), BadParameterError, `full parser: ${what}`);
      assert.throws(() => readCaCandidate(der), BadParameterError, what);
    }
    // Not DER, which the full parser's ASN.1 library lets through: refused here (a host CA
    // Keybound issues is DER; refusing only costs a heal, never trusts a key).
    const notDer: [string, Uint8Array][] = [
      ["critical written as FALSE", withExtensions(ca, [ext(BC, derSequence(DER_TRUE), FALSE)])],
      ["critical TRUE as 0x01", withExtensions(ca, [ext(BC, derSequence(DER_TRUE), BER_TRUE)])],
      ["cA TRUE as 0x01", withExtensions(ca, [ext(BC, derSequence(BER_TRUE), DER_TRUE)])],
      ["cA written as FALSE", withExtensions(ca, [ext(BC, derSequence(FALSE), DER_TRUE)])],
      [
        "bytes after basicConstraints",
        withExtensions(ca, [
          ext(BC, new Uint8Array([...derSequence(DER_TRUE), 0x05, 0x00]), DER_TRUE),
        ]),
      ],
      [
        "cA after pathLenConstraint",
        withExtensions(ca, [
          ext(BC, derSequence(derUnsigned(1), DER_TRUE), DER_TRUE),
        ]),
      ],
    ];
    for (const [what, der] of notDer) {
      assert.throws(() => readCaCandidate(der), BadParameterError, what);
    }
  },
});

Deno.test({
  name: "CA candidate: every mutated byte reads as the full parser reads it, or is refused",
  ignore,
  fn: async () => {
    const { ca } = await opensslCerts({});
    let both = 0;
    for (let i = 0; i < ca.length; i++) {
      for (const x of [0x01, 0x80, 0xff]) {
        const m = new Uint8Array(ca);
        m[i] ^= x;
        let light;
        try {
          light = readCaCandidate(m);
        } catch (e) {
          assert.ok(e instanceof BadParameterError, `byte ${i} ^ ${x}: ${e}`);
          continue;
        }
        let full;
        try {
          full = parseCertificate(m);
        } catch {
          continue;
        }
        both++;
        assert.equal(light.isCA, full.isCA, `byte ${i} ^ ${x}`);
        assert.deepEqual([light.notBefore, light.notAfter], [full.notBefore, full.notAfter]);
      }
    }
    assert.ok(both > ca.length, `only ${both} mutations read by both`);
  },
});
