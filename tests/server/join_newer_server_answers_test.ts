/**
 * Rolling upgrades (docs/protocol.md §1.7): the agent's join client against
 * a newer auth service whose join answers (`begin`, `continue` with a
 * challenge, a rotation request and the result, `resume`) carry a field it
 * does not know in every object, at every depth. The client reads what it
 * knows and drops the rest; the server still refuses unknown fields in the
 * requests, and the resume record it stores keeps the strict schema.
 *
 * @module
 */
import { joinBoundKeypair, resumeBoundKeypair } from "../../src/agent/join_client.ts";
import { generateKeyPair } from "../../src/crypto/keys.ts";
import { randomHex } from "../../src/crypto/random.ts";
import { JOIN_BEGIN_PATH } from "../../src/protocol/messages.ts";
import { ResumeRecord } from "../../src/server/join/resume_record.ts";
import { joinResumeKey } from "../../src/server/keys.ts";
import { assert, assertEquals } from "../_assert.ts";
import { FUTURE, newerServer } from "../protocol/_newer_server.ts";
import {
  editToken,
  onboardedBot,
  postRaw,
  putBot,
  rejectsCode,
  startHarness,
} from "./_join_fixture.ts";

Deno.test("the join client reads a newer server's join answers with unknown fields at every depth", async () => {
  let newer: ReturnType<typeof newerServer> | undefined;
  const h = await startHarness(
    {},
    (app) => (newer = newerServer(app, (p) => p.startsWith("/v1/join/"))),
  );
  const steps: string[] = [];
  // Sees what the client is handed: the answers with the future fields in them.
  const watching: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const body = await res.clone().text();
    const step = /"type":"(challenge|rotation_request)"/.exec(body)?.[1];
    steps.push(step ?? ("result" in JSON.parse(body) ? "result" : "other"));
    assert(body.includes(FUTURE), body);
    return res;
  };
  try {
    await putBot(h.ctx, "b1");
    // Onboarding with a pre-registered key: begin -> challenge, continue -> result.
    const bot = await onboardedBot(h, "t1", { botName: "b1" });
    assertEquals(bot.last!.generation, 1);
    // A refresh that rotates the bound key: challenge, rotation request, challenge of the new
    // key, result.
    await editToken(
      h.ctx,
      "t1",
      (t) => (t.spec.bound_keypair.rotate_after = h.clock.t.toISOString()),
    );
    h.clock.advance(5);
    const rotated = await bot.join({ fetch: watching });
    assertEquals(steps, ["challenge", "rotation_request", "challenge", "result"]);
    assertEquals(rotated.generation, 2);
    assertEquals(bot.keys.keys.length, 2);
    assertEquals(rotated.trust_bundle!.user.tls_ca_certs.length, 1);
    // Dropped, not passed on: nothing the client returns carries the field.
    assert(!JSON.stringify(rotated).includes(FUTURE));

    // A join whose last answer is lost, then resumed (its answer also has the fields).
    const subjectKey = await generateKeyPair("EdDSA");
    let session = "";
    const losing: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      const body = JSON.parse(await res.clone().text());
      if (body.session) session = body.session;
      if ("result" in body) throw new TypeError("connection reset (the answer is lost)");
      return res;
    };
    await rejectsCode(
      () =>
        joinBoundKeypair({
          baseUrl: h.baseUrl,
          fetch: losing,
          tokenName: "t1",
          subjectKey,
          ttlSeconds: 3600,
          keyStore: bot.keys,
          previousJoinState: bot.joinState,
          identity: bot.identity,
        }),
      "CONNECTION_FAILED",
    );
    const stored = await h.ctx.backend.get(joinResumeKey("t1"));
    assert(ResumeRecord.safeParse(stored?.value).success, "the stored record is strict and clean");
    const resumed = await resumeBoundKeypair({
      baseUrl: h.baseUrl,
      session,
      resumeId: randomHex(16),
      clusterName: "join.test",
      boundKey: (await bot.keys.findPrivateKey(rotated.bound_keypair.public_key))!,
      subjectKey: subjectKey.privateKey,
    });
    assertEquals(resumed.generation, 3);
    assert(!JSON.stringify(resumed).includes(FUTURE));
    assert(newer!.changed >= 8, `answers changed: ${newer!.changed}`);

    // Requests stay strict: the server still refuses a field it does not know.
    const refused = await postRaw(
      h,
      JOIN_BEGIN_PATH,
      JSON.stringify({ token_name: "t1", [FUTURE]: 1 }),
    );
    assertEquals([refused.status, (refused.json.error as { code: string }).code], [
      400,
      "BAD_PARAMETER",
    ]);
  } finally {
    await h.close();
  }
});
