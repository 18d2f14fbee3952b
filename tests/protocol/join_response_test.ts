/**
 * A join answer is a step or the result, never both nor neither (noted by
 * cafix in session 10): with options that drop fields they do not know, an
 * answer with both used to parse as a step, and the client carried on with a
 * join the server said was over. The join client against the real app behind
 * a wrapper that adds a result to its step answer refuses it with the code
 * of an answer that does not match the wire schema.
 *
 * @module
 */
import { joinBoundKeypair } from "../../src/agent/join_client.ts";
import { generateKeyPair } from "../../src/crypto/keys.ts";
import { isKeyboundError } from "../../src/errors.ts";
import { JOIN_BEGIN_PATH, JoinResponse } from "../../src/protocol/messages.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../_assert.ts";
import { MemoryKeyStore } from "../_key_store.ts";
import { startInProcessAuth, tctl } from "../tctl/_harness.ts";

const STEP = { type: "rotation_request", signature_algorithm_suite: "balanced-v1" } as const;

Deno.test("JoinResponse takes a step or a result, and refuses both or neither", () => {
  assertEquals(JoinResponse.parse({ session: "s", step: STEP, later: 1 }), {
    session: "s",
    step: STEP,
  });
  assertEquals(JoinResponse.parse({ result: null, later: 1 }), { result: null });
  for (
    const answer of [
      { session: "s", step: STEP, result: null },
      { result: null, session: "s", step: STEP },
      { session: "s" },
      {},
    ]
  ) {
    const r = JoinResponse.safeParse(answer);
    assert(!r.success, JSON.stringify(answer));
    assertEquals(r.error.issues[0].message, "expected exactly one of step and result");
  }
});

Deno.test("the join client refuses a server's answer carrying both a step and a result", async () => {
  let added = 0;
  const auth = await startInProcessAuth({
    around: (app) => ({
      async fetch(request, env) {
        const res = await app.fetch(request, env);
        if (!res.ok || new URL(request.url).pathname !== JOIN_BEGIN_PATH) return res;
        added++;
        const body = { ...await res.json(), result: null };
        return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
      },
    }),
  });
  try {
    const keys = new MemoryKeyStore();
    const key = await keys.add("EdDSA");
    const conn = ["--auth-server", auth.url, "-i", auth.identity];
    const add = await tctl(["bots", "add", "edge", "--initial-public-key", key, ...conn]);
    assertEquals(add.code, 0, add.stderr);
    const subjectKey = await generateKeyPair("EdDSA");
    const err = await assertRejects(() =>
      joinBoundKeypair({
        baseUrl: auth.url,
        tokenName: "edge",
        subjectKey,
        ttlSeconds: 3600,
        keyStore: keys,
      })
    );
    assert(isKeyboundError(err, "CONNECTION_FAILED"), String(err));
    assertStringIncludes(
      (err as Error).message,
      "unexpected join response from the server: (root): expected exactly one of step and result",
    );
    assertEquals(added, 1, "nothing sent after the begin answer");
  } finally {
    await auth.stop();
  }
});
