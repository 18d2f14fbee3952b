/**
 * The join client stores what a resume needs (`beforeCommit`, the pending
 * join record in tbot) while it signs the solution and the request, but sends
 * the solution only once that is stored; a store that fails sends nothing and
 * is the error the caller sees. Against the real app (in process), a bot
 * with a preregistered key (its first join answers a challenge).
 *
 * @module
 */
import { joinBoundKeypair } from "../../src/agent/join_client.ts";
import { generateKeyPair } from "../../src/crypto/keys.ts";
import { JOIN_CONTINUE_PATH } from "../../src/protocol/messages.ts";
import { assertEquals, assertRejects } from "../_assert.ts";
import { MemoryKeyStore } from "../_key_store.ts";
import { newCluster } from "./_cluster.ts";

async function withBot(
  run: (
    o: { url: string; keys: MemoryKeyStore; sent: string[]; fetch: typeof globalThis.fetch },
  ) => Promise<void>,
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
  await run({ url: "http://auth.invalid", keys, sent, fetch });
}

Deno.test("the solution leaves only once the pending record is stored", async () => {
  await withBot(async ({ url, keys, sent, fetch }) => {
    const result = await joinBoundKeypair({
      baseUrl: url,
      fetch,
      tokenName: "edge",
      subjectKey: await generateKeyPair("EdDSA"),
      ttlSeconds: 3600,
      keyStore: keys,
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
  await withBot(async ({ url, keys, sent, fetch }) => {
    const failure = new Error("disk full");
    const subjectKey = await generateKeyPair("EdDSA");
    const err = await assertRejects(() =>
      joinBoundKeypair({
        baseUrl: url,
        fetch,
        tokenName: "edge",
        subjectKey,
        ttlSeconds: 3600,
        keyStore: keys,
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
