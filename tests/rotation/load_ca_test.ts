/**
 * `loadCa` holds each X.509 slot of a stored CA record to its algorithm and
 * owner: `tls` P-256, `tls_ed25519` Ed25519 and on the user CA only. A record
 * that breaks this (malformed or hand-edited; storage is trusted otherwise)
 * is refused as `STORAGE_ERROR` at load, before any of its keys is trusted or
 * listed, in the active and in the additional set alike.
 *
 * @module
 */
import { assertEquals } from "../_assert.ts";
import { algOf } from "../../src/crypto/keys.ts";
import type { CaType } from "../../src/server/context.ts";
import { loadCa, newKeySet } from "../../src/server/rotation/material.ts";
import type { StoredCa, StoredKeySet } from "../../src/server/rotation/schema.ts";
import { rejectsCode } from "../server/_join_fixture.ts";

const now = new Date();
const user = await newKeySet("user", "load.example", now);
const host = await newKeySet("host", "load.example", now);
const next = await newKeySet("user", "load.example", now);

function record(type: CaType, active: StoredKeySet, additional?: StoredKeySet): StoredCa {
  return {
    type,
    format: 2,
    active,
    ...(additional ? { additional } : {}),
    rotation: { phase: "standby" },
    dropped: [],
    cross_signed: [],
  };
}

Deno.test("loadCa: a user CA with its two X.509 keys loads, each in its own list", async () => {
  const ca = await loadCa("user", record("user", user, next), "1");
  assertEquals(ca.trustedTls.map((k) => algOf(k.keyPair.publicKey)), ["ES256", "ES256"]);
  assertEquals(ca.trustedTlsEd25519.map((k) => algOf(k.keyPair.publicKey)), ["EdDSA", "EdDSA"]);
  assertEquals((await loadCa("host", record("host", host), "1")).trustedTlsEd25519, []);
});

Deno.test("loadCa: an Ed25519 X.509 key on a CA other than the user CA is refused", async () => {
  const withKey = { ...host, tls_ed25519: user.tls_ed25519 };
  await rejectsCode(() => loadCa("host", record("host", withKey), "1"), "STORAGE_ERROR");
  await rejectsCode(() => loadCa("host", record("host", host, withKey), "1"), "STORAGE_ERROR");
});

Deno.test("loadCa: a P-256 key in the Ed25519 slot is refused", async () => {
  const p256 = { ...user, tls_ed25519: next.tls };
  await rejectsCode(() => loadCa("user", record("user", p256), "1"), "STORAGE_ERROR");
  await rejectsCode(() => loadCa("user", record("user", user, p256), "1"), "STORAGE_ERROR");
});

Deno.test("loadCa: an Ed25519 key in the P-256 slot is refused", async () => {
  // Else its certificate would reach the trust bundle, GET /v1/ca/user and outputs' signer.
  const ed = { ...user, tls: user.tls_ed25519 };
  await rejectsCode(() => loadCa("user", record("user", ed), "1"), "STORAGE_ERROR");
  await rejectsCode(() => loadCa("user", record("user", user, ed), "1"), "STORAGE_ERROR");
  const hostEd = { ...host, tls: user.tls_ed25519 };
  await rejectsCode(() => loadCa("host", record("host", hostEd), "1"), "STORAGE_ERROR");
});
