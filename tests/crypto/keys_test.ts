/**
 * `exportSpki` remembers a key's export, including one still in progress:
 * a join exports its new subject key's SPKI and SSH forms together
 * (src/agent/join_client.ts), and they share one WebCrypto export.
 *
 * @module
 */
import { exportSpki, generateKeyPair } from "../../src/crypto/keys.ts";
import { toAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { assert, assertEquals } from "../_assert.ts";

Deno.test("exports made together of one new key share one WebCrypto export", async () => {
  const subtle = crypto.subtle as unknown as { exportKey: (...a: unknown[]) => Promise<unknown> };
  const original = subtle.exportKey;
  let calls = 0;
  subtle.exportKey = (...args: unknown[]) => {
    calls++;
    return original.apply(crypto.subtle, args);
  };
  try {
    for (const alg of ["EdDSA", "ES256"] as const) {
      calls = 0;
      const { publicKey } = await generateKeyPair(alg);
      const [a, b, ssh] = await Promise.all([
        exportSpki(publicKey),
        exportSpki(publicKey),
        toAuthorizedKey(publicKey),
      ]);
      assertEquals(calls, 1, alg);
      assertEquals(a, b);
      // Each caller owns its copy.
      assert(a !== b);
      a.fill(0);
      assertEquals(await exportSpki(publicKey), b);
      assertEquals(ssh.split(" ")[0], alg === "EdDSA" ? "ssh-ed25519" : "ecdsa-sha2-nistp256");
      assertEquals(calls, 1, alg);
    }
  } finally {
    subtle.exportKey = original;
  }
});
