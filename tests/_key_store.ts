/**
 * The one in-memory {@linkcode BoundKeyStore} of the tests: the join
 * fixtures of the server, Worker and conformance tests all use it. Portable
 * (no `node:*`), because the conformance cases are bundled into workerd and
 * Chromium.
 *
 * @module
 */
import type { BoundKeyStore } from "../src/agent/join_types.ts";
import {
  generateKeyPair,
  type KeyAlgorithm,
  type KeyPair,
  publicKeysEqual,
} from "../src/crypto/keys.ts";
import { parseAuthorizedKey, toAuthorizedKey } from "../src/crypto/ssh_wire.ts";

/** A bound-key store in memory: newest key first, at most 10, like tbot's history. */
export class MemoryKeyStore implements BoundKeyStore {
  /** Keys, newest first. */
  keys: { publicKey: string; keyPair: KeyPair }[] = [];
  /** Algorithm of rotation keys. */
  rotationAlg: KeyAlgorithm = "EdDSA";
  /** When set, rotation answers with this key instead of a new one (reuse tests). */
  rotationOverride?: string;

  /** Adds a new key and returns its authorized_keys text. */
  async add(alg: KeyAlgorithm = "EdDSA"): Promise<string> {
    const keyPair = await generateKeyPair(alg);
    const publicKey = await toAuthorizedKey(keyPair.publicKey);
    this.keys = [{ publicKey, keyPair }, ...this.keys].slice(0, 10);
    return publicKey;
  }

  /** A copy holding the same keys (a thief's copy). */
  clone(): MemoryKeyStore {
    const c = new MemoryKeyStore();
    c.keys = [...this.keys];
    return c;
  }

  async findPrivateKey(authorizedKey: string): Promise<CryptoKey | null> {
    const wanted = (await parseAuthorizedKey(authorizedKey)).key;
    for (const k of this.keys) {
      if (await publicKeysEqual(k.keyPair.publicKey, wanted)) return k.keyPair.privateKey;
    }
    return null;
  }

  generateRotationKey(): Promise<string> {
    if (this.rotationOverride) return Promise.resolve(this.rotationOverride);
    return this.add(this.rotationAlg);
  }
}
