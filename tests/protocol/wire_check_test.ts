/**
 * `wireParse` (src/protocol/wire_check.ts) gives the answer of the schema's
 * own `safeParse` on every value: the join's answers and a schema using every
 * construct the derived check knows, each valid value and hundreds of
 * mutations of it (keys removed and added, values of every JSON type, bounds
 * crossed); the same data in the same key order when accepted, zod's own
 * error when refused. A schema with a construct it does not know falls back
 * to zod, and the renewal's answers keep their derived check.
 */
import assert from "node:assert/strict";
import * as z from "zod";
import { JoinResponse } from "../../src/protocol/messages.ts";
import { ResumeResponse } from "../../src/protocol/join_resume.ts";
import { hasWireCheck, wireParse } from "../../src/protocol/wire_check.ts";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

const result = {
  bot_name: "b",
  bot_instance_id: "11111111-2222-4333-8444-555555555555",
  generation: 7,
  expires: "2026-12-02T15:17:29.000Z",
  certificates: {
    tls_cert: PEM,
    tls_ca_certs: [PEM],
    ssh_cert: "ssh-ed25519-cert-v01@openssh.com AAAA",
    ssh_ca_keys: ["ssh-ed25519 AAAA"],
  },
  trust_bundle: {
    host: { tls_ca_certs: [PEM], ssh_ca_keys: ["ssh-ed25519 AAAA"] },
    user: { tls_ca_certs: [PEM, PEM], ssh_ca_keys: ["ssh-ed25519 AAAA"] },
  },
  bound_keypair: { join_state: "eyJ", public_key: "ssh-ed25519 AAAA" },
};

/** Every construct the derived check handles, and the bounds it must keep. */
const Kitchen = z.strictObject({
  s: z.string().min(2).max(4),
  n: z.number(),
  i: z.number().int(),
  b: z.boolean(),
  u: z.unknown(),
  lit: z.literal(["a", "b"]),
  arr: z.array(z.number().int()).min(1).max(2),
  opt: z.string().optional(),
  nul: z.string().nullable(),
  optnul: z.strictObject({ x: z.string() }).nullable().optional(),
  loose: z.object({ k: z.string() }),
  union: z.union([z.string(), z.array(z.string())]),
  du: z.discriminatedUnion("type", [
    z.strictObject({ type: z.literal("one"), a: z.string() }),
    z.strictObject({ type: z.literal("two"), b: z.number() }),
  ]),
});

const kitchen = {
  s: "abc",
  n: 1.5,
  i: 3,
  b: false,
  u: { anything: [1] },
  lit: "b",
  arr: [1, 2],
  opt: "o",
  nul: null,
  optnul: { x: "y" },
  loose: { k: "v", extra: 1 },
  union: ["x"],
  du: { type: "two", b: 2 },
};

/** Values every leaf is replaced with. */
const REPLACEMENTS: unknown[] = [
  null,
  "",
  "a",
  "abcde",
  0,
  -1,
  1.5,
  2 ** 53,
  true,
  [],
  [1, 2, 3],
  {},
  { type: "one", a: "x" },
];

/** `value` with each key removed, each key added, each leaf replaced, recursively. */
function mutations(value: unknown): unknown[] {
  const out: unknown[] = REPLACEMENTS.filter((r) => r !== value);
  if (Array.isArray(value)) {
    out.push([...value, value[0]], value.slice(1));
    value.forEach((v, i) => {
      for (const m of mutations(v)) out.push(value.map((x, j) => j === i ? m : x));
    });
  } else if (value !== null && typeof value === "object") {
    const o = value as Record<string, unknown>;
    out.push({ ...o, unknown_key: 1 }, { ...o, __proto__: 1 }, JSON.parse('{"__proto__":1}'));
    for (const key of Object.keys(o)) {
      const { [key]: _gone, ...rest } = o;
      out.push(rest);
      for (const m of mutations(o[key])) out.push({ ...o, [key]: m });
    }
  }
  return out;
}

function assertSameAnswer(schema: z.ZodType, value: unknown): void {
  // What a caller gets from the wire: the value after JSON.
  const json = JSON.parse(JSON.stringify(value) ?? "null");
  const fast = wireParse(schema, json);
  const zod = schema.safeParse(json);
  assert.equal(fast.success, zod.success, JSON.stringify(json));
  if (zod.success) {
    assert.equal(JSON.stringify(fast.data), JSON.stringify(zod.data), "same data, same key order");
    assert.deepEqual(fast.data, zod.data);
  } else {
    assert.deepEqual(fast.error!.issues, zod.error.issues);
  }
}

Deno.test("wire check: the join's answers have one, and answer as zod on every mutation", () => {
  assert.ok(hasWireCheck(JoinResponse));
  assert.ok(hasWireCheck(ResumeResponse));
  const answers = [
    { session: "s", step: { type: "challenge", public_key: "ssh-ed25519 AAAA", challenge: "{}" } },
    { session: "s", step: { type: "rotation_request", signature_algorithm_suite: "balanced" } },
    { result },
    { result: null },
    { result: { ...result, trust_bundle: undefined } },
  ];
  let checked = 0;
  for (const answer of answers) {
    for (const v of [answer, ...mutations(answer)]) {
      assertSameAnswer(JoinResponse, v);
      assertSameAnswer(ResumeResponse, v);
      checked++;
    }
  }
  assert.ok(checked > 800, `${checked} values`);
});

Deno.test("wire check: every construct it knows answers as zod", () => {
  assert.ok(hasWireCheck(Kitchen));
  const { opt: _o, optnul: _n, ...required } = kitchen;
  let checked = 0;
  for (const base of [kitchen, required, { ...kitchen, du: { type: "one", a: "x" } }]) {
    for (const v of [base, ...mutations(base)]) {
      assertSameAnswer(Kitchen, v);
      checked++;
    }
  }
  assert.ok(checked > 500, `${checked} values`);
});

Deno.test("wire check: a construct it does not know leaves the schema to zod", () => {
  const refined = z.strictObject({ s: z.string().refine((s) => s !== "no", "not no") });
  const formatted = z.strictObject({ e: z.email() });
  const defaulted = z.strictObject({ d: z.string().default("x") });
  const transformed = z.strictObject({ t: z.string().transform((s) => s.length) });
  const exclusive = z.xor([z.string(), z.string().min(1)]);
  for (const s of [refined, formatted, defaulted, transformed, exclusive]) {
    assert.equal(hasWireCheck(s), false);
  }
  assert.equal(wireParse(refined, { s: "no" }).success, false);
  assert.equal(wireParse(formatted, { e: "not an address" }).success, false);
  assert.deepEqual(wireParse(defaulted, {}).data, { d: "x" });
  assert.deepEqual(wireParse(transformed, { t: "abc" }).data, { t: 3 });
  assert.equal(wireParse(exclusive, "a").success, false);
  // A schema nested in one it knows takes the whole schema back to zod.
  assert.equal(hasWireCheck(z.strictObject({ inner: refined })), false);
});
