/**
 * `issueCertificate` writes its DER by hand (src/pki/der.ts); these are the
 * certificates the asn1-schema encoder it replaced made from the same keys,
 * serials and dates (./x509_golden_cases.ts). Every byte must stay, and each
 * still parses with the full parser.
 */
import assert from "node:assert/strict";
import { issueCertificate } from "../../src/pki/x509.ts";
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
