/**
 * The join client stores what a resume needs (`beforeCommit`, the pending
 * join record in tbot) while it signs the solution and the request, but sends
 * the solution only once that is stored; a store that fails sends nothing and
 * is the error the caller sees. The signed request is signed once the record
 * is stored, so a slow store cannot age its `iat`. Against the real app (in process), a bot
 * with a preregistered key (its first join answers a challenge).
 *
 * @module
 */
import { joinBoundKeypair } from "../../src/agent/join_client.ts";
import type { JoinParams } from "../../src/agent/join_types.ts";
import { exportSpki, generateKeyPair } from "../../src/crypto/keys.ts";
import { toAuthorizedKey } from "../../src/crypto/ssh_wire.ts";
import { MemoryStorage } from "../../src/agent/memory_storage.ts";
import { generateStoredKeyPair } from "../../src/agent/stored_keys.ts";
import { certificatesFromPem } from "../../src/pki/mod.ts";
import { fromBase64Url, fromUtf8 } from "../../src/util/encoding.ts";
import { JOIN_CONTINUE_PATH } from "../../src/protocol/messages.ts";
import { assert, assertEquals, assertRejects } from "../_assert.ts";
import { MemoryKeyStore } from "../_key_store.ts";
import { newCluster } from "./_cluster.ts";

/** What every join of these tests shares. */
type JoinBase = Pick<JoinParams, "baseUrl" | "fetch" | "tokenName" | "ttlSeconds" | "keyStore">;

async function withBot(
  run: (o: { base: JoinBase; sent: string[]; fetch: typeof globalThis.fetch }) => Promise<void>,
) {
  const cluster = await newCluster();
  await cluster.createBot("edge");
  const keys = new MemoryKeyStore();
  await cluster.createToken("edge", "edge", {
    onboarding: { initial_public_key: await keys.add("EdDSA") },
  });
  const sent: string[] = [];
  // The real app, called in process; `sent` records each request as it leaves.
  const fetch: typeof globalThis.fetch = (input, init) => {
    sent.push(`send ${new URL(String(input)).pathname}`);
    return cluster.fetch(input, init);
  };
  const base = {
    baseUrl: "http://auth.invalid",
    tokenName: "edge",
    ttlSeconds: 3600,
    keyStore: keys,
  };
  await run({ base: { ...base, fetch }, sent, fetch });
}

Deno.test("the solution leaves only once the pending record is stored", async () => {
  await withBot(async ({ base, sent }) => {
    const result = await joinBoundKeypair({
      ...base,
      subjectKey: await generateKeyPair("EdDSA"),
      beforeCommit: async () => {
        sent.push("store started");
        // A slow store (a file write and its fsync): the join must wait for it.
        await new Promise((r) => setTimeout(r, 50));
        sent.push("stored");
      },
    });
    assertEquals(result.bot_name, "edge");
    assertEquals(sent.slice(1), ["store started", "stored", `send ${JOIN_CONTINUE_PATH}`]);
  });
});

Deno.test("a pending record that cannot be stored: nothing is sent, and its error is thrown", async () => {
  await withBot(async ({ base, sent }) => {
    const failure = new Error("disk full");
    const subjectKey = await generateKeyPair("EdDSA");
    const err = await assertRejects(() =>
      joinBoundKeypair({
        ...base,
        subjectKey,
        beforeCommit: async () => {
          await new Promise((r) => setTimeout(r, 20));
          throw failure;
        },
      })
    );
    assertEquals(err, failure);
    assertEquals(sent.length, 1, `only the begin was sent: ${sent}`);
  });
});

Deno.test("a refresh's continue is signed after the pending record is stored", async () => {
  await withBot(async ({ base, fetch }) => {
    const subjectKey = await generateKeyPair("EdDSA");
    const first = await joinBoundKeypair({
      ...base,
      subjectKey,
    });
    let storedAt = 0;
    let iat = 0;
    const result = await joinBoundKeypair({
      ...base,
      fetch: (input, init) => {
        const auth = new Headers(init?.headers).get("authorization");
        if (auth) iat = JSON.parse(fromUtf8(fromBase64Url(auth.split(".")[1]))).iat;
        return fetch(input, init);
      },
      subjectKey,
      previousJoinState: first.bound_keypair.join_state,
      identity: {
        certDer: certificatesFromPem(first.certificates.tls_cert)[0],
        privateKey: subjectKey.privateKey,
      },
      beforeCommit: async () => {
        // Longer than a second: a request signed before the store ends has an older `iat`.
        await new Promise((r) => setTimeout(r, 1100));
        storedAt = Math.floor(Date.now() / 1000);
      },
    });
    assertEquals(result.generation, first.generation + 1);
    assert(iat >= storedAt, `iat ${iat} is before the store ended (${storedAt})`);
  });
});

Deno.test("an agent's new certificate key: its SPKI, which the join sends, is exported while it is stored", async () => {
  const exportKey = crypto.subtle.exportKey;
  let spkiExports = 0;
  // Counts the real exports (the spy calls through).
  const real = exportKey as (format: string, key: CryptoKey) => Promise<unknown>;
  crypto.subtle.exportKey = ((format: string, key: CryptoKey) => {
    if (format === "spki") spkiExports++;
    return real.call(crypto.subtle, format, key);
  }) as typeof exportKey;
  try {
    const key = await generateStoredKeyPair(new MemoryStorage(), "ES256");
    assertEquals(spkiExports, 1, "exported while the key was made");
    // What the join's begin sends of it.
    await Promise.all([exportSpki(key.publicKey), toAuthorizedKey(key.publicKey)]);
    assertEquals(spkiExports, 1, "the join's forms need no export of their own");
  } finally {
    crypto.subtle.exportKey = exportKey;
  }
});

Deno.test("a failed early export of the new key's SPKI is not kept: the join's export tries again", async () => {
  const exportKey = crypto.subtle.exportKey;
  const real = exportKey as (format: string, key: CryptoKey) => Promise<unknown>;
  let failNext = true;
  crypto.subtle.exportKey = ((format: string, key: CryptoKey) => {
    if (format === "spki" && failNext) {
      failNext = false;
      return Promise.reject(new Error("export failed"));
    }
    return real.call(crypto.subtle, format, key);
  }) as typeof exportKey;
  try {
    const key = await generateStoredKeyPair(new MemoryStorage(), "ES256");
    assertEquals(failNext, false, "the early export was tried");
    assertEquals((await exportSpki(key.publicKey)).length, 91, "a P-256 SPKI, exported again");
  } finally {
    crypto.subtle.exportKey = exportKey;
  }
});
