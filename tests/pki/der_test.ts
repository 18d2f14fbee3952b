/**
 * derTlv writes the header in front of its parts in one buffer: the length
 * in short form below 128 and in the fewest long-form bytes above (X.690
 * §8.1.3, §10.1), the parts in order.
 */
import { assertEquals } from "../_assert.ts";
import { derSequence, derTlv } from "../../src/pki/der.ts";

Deno.test("derTlv: short and long length forms at their edges, parts in order", () => {
  const cases: [number, number[]][] = [
    [0, [0x00]],
    [127, [0x7f]],
    [128, [0x81, 0x80]],
    [255, [0x81, 0xff]],
    [256, [0x82, 0x01, 0x00]],
    [65535, [0x82, 0xff, 0xff]],
    [65536, [0x83, 0x01, 0x00, 0x00]],
  ];
  for (const [n, length] of cases) {
    const content = new Uint8Array(n).map((_, i) => i % 251);
    // The same content split in three parts (one of them empty).
    const parts = [content.subarray(0, n >> 1), new Uint8Array(0), content.subarray(n >> 1)];
    const out = derTlv(0x04, ...parts);
    assertEquals([...out.subarray(0, 1 + length.length)], [0x04, ...length], `length ${n}`);
    assertEquals(out.subarray(1 + length.length), content, `content ${n}`);
    assertEquals(out.length, 1 + length.length + n);
  }
  assertEquals([...derSequence()], [0x30, 0x00]);
  assertEquals(
    [...derSequence(new Uint8Array([1, 2]), new Uint8Array([3]))],
    [0x30, 0x03, 1, 2, 3],
  );
});
