/**
 * `answerSchema` (docs/protocol.md §1.7): the strict schema a server keeps
 * for requests and storage, made to drop unknown fields at every depth for a
 * client parsing an answer, and nothing else changed.
 */
import * as z from "zod";
import { assert, assertEquals, assertThrows } from "../_assert.ts";
import { answerSchema } from "../../src/protocol/answer_schema.ts";
import { JoinResultSchema, ResultResponse, StepResponse } from "../../src/protocol/messages.ts";
import { ResumeResponse } from "../../src/protocol/join_resume.ts";
import { ALL_KINDS, schemaOf } from "../../src/resources/schemas.ts";
import { FUTURE, withFutureFields } from "./_newer_server.ts";

let made = 0; // a default computed at each parse
const Item = z.strictObject({ n: z.number().int().max(9) }).refine((i) => i.n !== 3, "not 3");
const Strict = z.strictObject({
  list: z.array(Item),
  map: z.record(z.string(), Item),
  maybe: Item.optional(),
  nothing: Item.nullable(),
  either: z.discriminatedUnion("type", [
    z.strictObject({ type: z.literal("a"), a: Item }),
    z.strictObject({ type: z.literal("b"), b: z.string() }),
  ]),
  pair: z.tuple([Item, z.string()]),
  made: z.string().default(() => `default ${++made}`),
  loose: z.looseObject({ kept: z.number() }),
});

const value = {
  list: [{ n: 1 }, { n: 2 }],
  map: { x: { n: 4 } },
  maybe: { n: 5 },
  nothing: null,
  either: { type: "a", a: { n: 6 } },
  pair: [{ n: 7 }, "s"],
  loose: { kept: 1, extra: "a loose object keeps what it lets through" },
};

Deno.test("answerSchema: unknown fields dropped at every depth; the strict schema unchanged", () => {
  const Answer = answerSchema(Strict);
  // A record's keys are data, not fields: the future field goes into its values only.
  const future = {
    ...withFutureFields(value) as object,
    map: { x: { n: 4, [FUTURE]: { added: "later" } } },
  };
  assert(!Strict.safeParse(future).success, "the strict schema still refuses");
  const parsed = Answer.parse(future);
  assert(!JSON.stringify({ ...parsed, loose: {} }).includes(FUTURE), JSON.stringify(parsed));
  // A loose object keeps unknown fields as it always did, the added one too.
  assertEquals(Object.keys(parsed.loose).sort(), ["extra", FUTURE, "kept"]);
  const { loose: _l, made: _m, ...rest } = parsed;
  const { loose: _sl, made: _sm, ...plain } = Strict.parse(value);
  assertEquals(rest, plain);
});

Deno.test("answerSchema: types, bounds, refinements and per-parse defaults are kept", () => {
  const Answer = answerSchema(Strict);
  const bad = (change: Record<string, unknown>) =>
    !Answer.safeParse({ ...value, ...change }).success;
  assert(bad({ list: [{ n: 10 }] }), "bound");
  assert(bad({ list: [{ n: 3 }] }), "refinement on an object");
  assert(bad({ map: { x: { n: "1" } } }), "type");
  assert(bad({ either: { type: "c" } }), "discriminator");
  assert(bad({ pair: [{ n: 1 }] }), "tuple length");
  const [first, second] = [Answer.parse(value).made, Answer.parse(value).made];
  assert(first.startsWith("default ") && first !== second, `${first} / ${second}`);
});

Deno.test("answerSchema: every resource kind and join answer has a rule; an unknown kind fails at once", () => {
  for (const kind of ALL_KINDS) answerSchema(schemaOf(kind));
  for (const s of [StepResponse, ResultResponse, ResumeResponse, JoinResultSchema]) {
    answerSchema(s);
  }
  assertThrows(
    () => answerSchema(z.strictObject({ later: z.lazy(() => z.string()) })),
    Error,
    'no rule for a "lazy" schema',
  );
});

Deno.test("answerSchema: a union of objects without a discriminator fails where it is made", () => {
  // Tolerant, { a, b } would match the first option and lose b without a word (review-ca N3).
  const ambiguous = z.union([
    z.strictObject({ a: z.string() }),
    z.strictObject({ a: z.string(), b: z.string() }).optional(),
  ]);
  assertThrows(() => answerSchema(ambiguous), Error, "a union of objects needs a discriminator");
  assertThrows(() => answerSchema(z.strictObject({ inner: z.array(ambiguous) })), Error);
  // A discriminated union, or one object beside other types, stays as it was.
  answerSchema(z.union([z.strictObject({ a: z.string() }), z.string(), z.null()]));
  const tagged = answerSchema(z.discriminatedUnion("type", [
    z.strictObject({ type: z.literal("a"), a: z.string() }),
    z.strictObject({ type: z.literal("b"), a: z.string(), b: z.string() }),
  ]));
  assertEquals(tagged.parse({ type: "b", a: "x", b: "y", later: 1 }), {
    type: "b",
    a: "x",
    b: "y",
  });
});
