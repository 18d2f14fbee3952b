import { assertEquals, assertThrows } from "../_assert.ts";
import { BadParameterError } from "../../src/errors.ts";
import { fromBase64, fromHex, fromPem, toBase64, toHex, toPem } from "../../src/util/encoding.ts";

/** The encodings as the portable definitions give them, to compare the runtime's with. */
function expectedBase64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}
const expectedHex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

Deno.test("base64 and hex agree with their definitions on every length up to 300 bytes", () => {
  for (let n = 0; n <= 300; n++) {
    const bytes = crypto.getRandomValues(new Uint8Array(n));
    const b64 = toBase64(bytes);
    assertEquals(b64, expectedBase64(bytes));
    assertEquals(fromBase64(b64), bytes);
    const hex = toHex(bytes);
    assertEquals(hex, expectedHex(bytes));
    assertEquals(fromHex(hex), bytes);
    assertEquals(fromHex(hex.toUpperCase()), bytes);
  }
});

Deno.test("fromBase64 ignores whitespace and accepts missing padding", () => {
  assertEquals(fromBase64(" AQID\nBA==\r\n"), new Uint8Array([1, 2, 3, 4]));
  assertEquals(fromBase64("AQIDBA"), new Uint8Array([1, 2, 3, 4]));
});

Deno.test("bad base64 and hex are BadParameterErrors", () => {
  for (const bad of ["A", "AQ=D", "AQ-_", "A*==", "AQIDBA==" + "="]) {
    assertThrows(() => fromBase64(bad), BadParameterError, "invalid base64");
  }
  for (const bad of ["a", "0g", "zz", "0x00"]) {
    assertThrows(() => fromHex(bad), BadParameterError, "invalid hex");
  }
});

Deno.test("a PEM block survives toPem and fromPem with 64-column lines", () => {
  const der = crypto.getRandomValues(new Uint8Array(200));
  const pem = toPem("CERTIFICATE", der);
  const lines = pem.trim().split("\n");
  assertEquals(lines[0], "-----BEGIN CERTIFICATE-----");
  assertEquals(lines.slice(1, -1).every((l) => l.length <= 64), true);
  assertEquals(fromPem("CERTIFICATE", pem), der);
});
