/**
 * SshWriter writes into one growing buffer: fields across its first size,
 * an mpint that needs a zero byte in front, and the bytes spelled out.
 */
import { assertEquals } from "../_assert.ts";
import { SshReader, SshWriter } from "../../src/crypto/ssh_wire.ts";

Deno.test("SshWriter: fields across the buffer's growth come out as the wire format spells them", () => {
  const long = new Uint8Array(300).map((_, i) => i & 0xff);
  const w = new SshWriter()
    .uint32(0x01020304)
    .string("ssh-ed25519")
    .raw(new Uint8Array([9, 9]))
    .string(long) // past the first 256 bytes: the buffer grows mid-field
    .uint64(0x0102030405060708n)
    .mpint(new Uint8Array([0, 0, 0x80, 1])) // leading zeros dropped, a zero byte put back
    .mpint(new Uint8Array([0, 0x7f]))
    .string(new Uint8Array(0));
  const expected = [
    [1, 2, 3, 4],
    [0, 0, 0, 11, ...new TextEncoder().encode("ssh-ed25519")],
    [9, 9],
    [0, 0, 1, 44, ...long],
    [1, 2, 3, 4, 5, 6, 7, 8],
    [0, 0, 0, 3, 0, 0x80, 1],
    [0, 0, 0, 1, 0x7f],
    [0, 0, 0, 0],
  ].flat();
  const out = w.bytes();
  assertEquals([...out], expected);
  // bytes() is a copy; writing on does not change it.
  w.uint32(7);
  assertEquals(out.length, expected.length);
  assertEquals(w.bytes().length, expected.length + 4);
  const r = new SshReader(out);
  assertEquals(r.uint32(), 0x01020304);
  assertEquals(r.text(), "ssh-ed25519");
});
