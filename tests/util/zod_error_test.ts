/**
 * src/util/zod_error.ts: a union none of whose options matched is reported
 * at the field of the option that got furthest, the same on both sides of
 * the wire (the server's BAD_PARAMETER, the client's unusable answer).
 */
import * as z from "zod";
import { assertEquals, assertThrows } from "../_assert.ts";
import { firstIssuePath, formatZodError, furthestIssue } from "../../src/util/zod_error.ts";
import { parseJson } from "../../src/server/http.ts";
import { unexpectedAnswer } from "../../src/protocol/http_client.ts";
import { KeyboundError } from "../../src/errors.ts";

/** A step or a result, as a join answer is (src/protocol/messages.ts JoinResponse). */
const Answer = z.strictObject({
  session: z.string(),
  reply: z.union([
    z.strictObject({ result: z.strictObject({ bot_name: z.string() }) }),
    z.strictObject({
      step: z.union([
        z.strictObject({ type: z.literal("challenge"), challenge: z.string() }),
        z.strictObject({ type: z.literal("rotation_request"), suite: z.string() }),
      ]),
    }),
  ]),
});

const failure = (value: unknown) => {
  const r = Answer.safeParse(value);
  if (r.success) throw new Error("parsed");
  return r.error;
};

Deno.test("a union with no matching option names the field of the option that got furthest", () => {
  // An unknown step type: zod alone says "reply: Invalid input" (a union, no field).
  const unknownStep = failure({ session: "s", reply: { step: { type: "other", challenge: "c" } } });
  assertEquals(unknownStep.issues[0].code, "invalid_union");
  assertEquals(firstIssuePath(unknownStep), "reply.step.type");
  assertEquals(
    formatZodError(unknownStep),
    'reply.step.type: Invalid input: expected "challenge"',
  );
  assertEquals(furthestIssue(unknownStep.issues[0]).path, ["reply", "step", "type"]);
  // Furthest into the value wins, whichever option it is: the result's field.
  const badResult = failure({ session: "s", reply: { result: { bot_name: 7 } } });
  assertEquals(firstIssuePath(badResult), "reply.result.bot_name");
  // No option gets past the union itself: the union's own place and words.
  const notObject = failure({ session: "s", reply: "x" });
  assertEquals(firstIssuePath(notObject), "reply");
  // Not a union: unchanged.
  assertEquals(firstIssuePath(failure({ session: 1, reply: "x" })), "session");
  assertEquals(firstIssuePath(new z.ZodError([])), "(root)");
});

Deno.test("the server's BAD_PARAMETER and the client's unusable answer name the same field", () => {
  const body = JSON.stringify({ session: "s", reply: { step: { type: "other", challenge: "c" } } });
  const server = assertThrows(() => parseJson(body, Answer), KeyboundError);
  assertEquals(server.code, "BAD_PARAMETER");
  assertEquals(server.details, { path: "reply.step.type" });
  const client = unexpectedAnswer("join response", failure(JSON.parse(body)));
  assertEquals(client.details, { answer_schema_mismatch: "reply.step.type" });
  assertEquals(client.message, `unexpected join response from the server: ${server.message}`);
});
