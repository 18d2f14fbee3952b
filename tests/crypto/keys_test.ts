/**
 * `exportSpki` remembers a key's export, including one still in progress:
 * a join exports its new subject key's SPKI and SSH forms together
 * (src/agent/join_client.ts), and they share one WebCrypto export. The
 * server imports that key from both forms at `begin` and again at
 * `continue`: `importSpki` makes one import serve them, keyed by the bytes.
 *
 * @module
 */
import { exportSpki, generateKeyPair, importSpki, sign, verify } from "../../src/crypto/keys.ts";
import { parseAuthorizedKey, toAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { onP256Curve } from "../../src/crypto/p256_point.ts";
import { BadParameterError } from "../../src/errors.ts";
import { fromBase64, toBase64 } from "../../src/util/encoding.ts";
import { assert, assertEquals, assertRejects } from "../_assert.ts";

/** Runs `fn` with `crypto.subtle[method]` counted; `fn` reads and resets the count. */
async function counting(
  method: "exportKey" | "importKey",
  fn: (count: { calls: number }) => Promise<void>,
): Promise<void> {
  const subtle = crypto.subtle as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const original = subtle[method];
  const count = { calls: 0 };
  subtle[method] = (...args: unknown[]) => {
    count.calls++;
    return original.apply(crypto.subtle, args);
  };
  try {
    await fn(count);
  } finally {
    subtle[method] = original;
  }
}

Deno.test("exports made together of one new key share one WebCrypto export", async () => {
  await counting("exportKey", async (count) => {
    for (const alg of ["EdDSA", "ES256"] as const) {
      count.calls = 0;
      const { publicKey } = await generateKeyPair(alg);
      const [a, b, ssh] = await Promise.all([
        exportSpki(publicKey),
        exportSpki(publicKey),
        toAuthorizedKey(publicKey),
      ]);
      assertEquals(count.calls, 1, alg);
      assertEquals(a, b);
      // Each caller owns its copy.
      assert(a !== b);
      a.fill(0);
      assertEquals(await exportSpki(publicKey), b);
      assertEquals(ssh.split(" ")[0], alg === "EdDSA" ? "ssh-ed25519" : "ecdsa-sha2-nistp256");
      assertEquals(count.calls, 1, alg);
    }
  });
});

Deno.test("one import serves a key's SPKI and SSH forms, and only those bytes", async () => {
  await counting("importKey", async (count) => {
    for (const alg of ["EdDSA", "ES256"] as const) {
      const pair = await generateKeyPair(alg);
      const spki = await exportSpki(pair.publicKey);
      const line = await toAuthorizedKey(pair.publicKey);
      count.calls = 0;
      // A join's begin (both forms at once), then its continue (the SSH form).
      const [fromSpki, fromSsh] = await Promise.all([importSpki(spki), parseAuthorizedKey(line)]);
      const again = (await parseAuthorizedKey(line)).key;
      assertEquals(count.calls, 1, alg);
      assert(fromSpki === fromSsh.key && fromSsh.key === again, alg);
      const data = new Uint8Array([1, 2, 3]);
      assert(await verify(fromSpki, await sign(pair.privateKey, data), data), alg);
      // Another key's bytes get their own import and their own key.
      const other = await generateKeyPair(alg);
      const otherKey = await importSpki(await exportSpki(other.publicKey));
      assertEquals(count.calls, 2, alg);
      assert(otherKey !== fromSpki, alg);
      assertEquals(await exportSpki(otherKey), await exportSpki(other.publicKey));
    }
  });
});

Deno.test("a P-256 public key off the curve is refused at import, not when it verifies", async () => {
  for (let i = 0; i < 8; i++) {
    const spki = await exportSpki((await generateKeyPair("ES256")).publicKey);
    assert(onP256Curve(spki.subarray(spki.length - 65)), "a generated key is on the curve");
    const bad = spki.slice();
    bad[bad.length - 1] ^= 1; // y changed: off the curve
    await assertRejects(() => importSpki(bad), BadParameterError, "not a point on the P-256 curve");
    // The SSH form reaches the same import.
    const ssh = await toAuthorizedKey(await importSpki(spki));
    const blob = fromBase64(ssh.split(" ")[1]);
    blob[blob.length - 1] ^= 1;
    await assertRejects(
      () => parseAuthorizedKey(`ecdsa-sha2-nistp256 ${toBase64(blob)}`),
      BadParameterError,
    );
  }
  // A coordinate at or above the field prime is refused whatever the equation says.
  const tooLarge = new Uint8Array(65).fill(0xff);
  tooLarge[0] = 0x04;
  assertEquals(onP256Curve(tooLarge), false);
});
