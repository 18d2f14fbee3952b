/**
 * `issueCertificate` writes its DER by hand (src/pki/der.ts); these are the
 * certificates the asn1-schema encoder it replaced made from the same keys,
 * serials and dates (./x509_golden_cases.ts). Every byte must stay, and each
 * still parses with the full parser.
 */
import assert from "node:assert/strict";
import { BadParameterError } from "../../src/errors.ts";
import { issueCertificate, NAME_OIDS } from "../../src/pki/x509.ts";
import { parseCertificate } from "../../src/pki/x509_parse.ts";
import { toHex } from "../../src/util/encoding.ts";
import { goldenCases } from "./x509_golden_cases.ts";

const golden: Record<string, string> = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/x509_golden.json", import.meta.url)),
);

Deno.test("x509 golden: the hand-written DER equals the asn1-schema encoding, byte for byte", async () => {
  const cases = await goldenCases();
  assert.deepEqual(cases.map(([name]) => name).sort(), Object.keys(golden).sort());
  for (const [name, options] of cases) {
    const der = await issueCertificate(options);
    assert.equal(toHex(der), golden[name], name);
    parseCertificate(der);
  }
});

Deno.test("x509: random certificates re-encode identically through asn1-schema (long-form lengths, many SANs)", async () => {
  const { AsnConvert } = await import("@peculiar/asn1-schema");
  const { Certificate } = await import("@peculiar/asn1-x509");
  const [, base] = (await goldenCases())[2];
  const rnd = (n: number) => Math.floor(Math.random() * n);
  const text = (n: number) => Array.from({ length: n }, () => "aZ09 -ü漢"[rnd(8)]).join("");
  for (let i = 0; i < 40; i++) {
    const der = await issueCertificate({
      ...base,
      subject: Array.from({ length: 1 + rnd(4) }, () => ({
        oid: [NAME_OIDS.commonName, NAME_OIDS.organization, "2.999.4294967296.7"][rnd(3)],
        value: text([1, 127, 128, 255, 256, 70_000][rnd(6)]),
      })),
      dnsNames: Array.from({ length: rnd(40) }, (_, k) => `h${k}.example`),
      serial: crypto.getRandomValues(new Uint8Array(1 + rnd(19))).map((b, k) => k ? b : b | 1),
      notAfter: new Date(Date.UTC(2027 + rnd(7000), rnd(12), 1 + rnd(28))),
      isCA: rnd(2) === 1,
    });
    const again = new Uint8Array(AsnConvert.serialize(AsnConvert.parse(der, Certificate)));
    assert.equal(toHex(again), toHex(der), `certificate ${i}`);
  }
});

Deno.test("x509: a name value that is not well-formed Unicode is refused, not altered", async () => {
  const [, base] = (await goldenCases())[1];
  await assert.rejects(
    () =>
      issueCertificate({ ...base, subject: [{ oid: NAME_OIDS.commonName, value: "bot-\ud800x" }] }),
    BadParameterError,
  );
});
