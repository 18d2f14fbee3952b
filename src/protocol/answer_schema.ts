/**
 * Client-side schemas of answers whose shapes are also checked strictly
 * elsewhere (docs/protocol.md §1.7): the join result is also the server's
 * stored resume record, resources are also request bodies and stored
 * values. Those places keep the strict schema, the one source of truth;
 * a client parses the answer with {@linkcode answerSchema} of it, which is
 * the same schema except that an object drops the fields it does not know
 * instead of refusing them, at every depth. So a newer server may add a
 * field to these answers without breaking older clients, and nothing a
 * client does not know is passed on.
 *
 * @module
 */
import type * as z from "zod";

type Def = { type: string } & Record<string, unknown>;

const defOf = (s: z.ZodType): Def => s._zod.def as unknown as Def;

/** Schema kinds with no schema inside them: kept as they are. */
const LEAVES = new Set([
  "string",
  "number",
  "int",
  "boolean",
  "bigint",
  "null",
  "undefined",
  "never",
  "any",
  "unknown",
  "date",
  "literal",
  "enum",
  "nan",
  "template_literal",
  "custom",
  "transform",
]);

/** Wrappers of one inner schema (`def.innerType`). */
const WRAPPERS = new Set([
  "optional",
  "nullable",
  "default",
  "prefault",
  "nonoptional",
  "readonly",
  "catch",
]);

/**
 * A copy of `s` with some of its definition replaced. The definition's
 * getters (a default computed per parse) stay getters; its checks
 * (refinements) are kept.
 */
function cloneWith(s: z.ZodType, changes: Record<string, unknown>): z.ZodType {
  const def = Object.defineProperties({}, Object.getOwnPropertyDescriptors(s._zod.def));
  for (const [key, value] of Object.entries(changes)) {
    Object.defineProperty(def, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return s.clone(def as typeof s._zod.def);
}

/** The definition under any wrappers (optional, nullable, default …). */
function unwrapped(s: z.ZodType): Def {
  const def = defOf(s);
  return WRAPPERS.has(def.type) ? unwrapped(def.innerType as z.ZodType) : def;
}

function tolerant(s: z.ZodType): z.ZodType {
  const def = defOf(s);
  const inner = (key: string) => tolerant(def[key] as z.ZodType);
  const each = (key: string) => (def[key] as z.ZodType[]).map(tolerant);
  if (LEAVES.has(def.type)) return s;
  if (WRAPPERS.has(def.type)) return cloneWith(s, { innerType: inner("innerType") });
  switch (def.type) {
    case "object": {
      const shape: Record<string, z.ZodType> = {};
      for (const [key, field] of Object.entries(def.shape as Record<string, z.ZodType>)) {
        shape[key] = tolerant(field);
      }
      // A strict object's catchall is `never`: none drops unknown keys. A loose object's
      // (`unknown`) already keeps them, by its own decision.
      const catchall = def.catchall as z.ZodType | undefined;
      const keep = catchall && defOf(catchall).type !== "never" ? tolerant(catchall) : undefined;
      return cloneWith(s, { shape, catchall: keep });
    }
    case "array":
      return cloneWith(s, { element: inner("element") });
    case "union": {
      // Options that drop unknown fields are no longer disjoint by their fields: an answer
      // carrying another option's fields too matches the first that fits, silently. Only a
      // discriminator (a literal per option) keeps the choice the server's.
      const objects = (def.options as z.ZodType[]).filter((o) => unwrapped(o).type === "object");
      if (objects.length > 1 && def.discriminator === undefined) {
        throw new Error(
          "answerSchema: a union of objects needs a discriminator (z.discriminatedUnion)",
        );
      }
      return cloneWith(s, { options: each("options") });
    }
    case "record":
      return cloneWith(s, { valueType: inner("valueType") });
    case "pipe":
      return cloneWith(s, { in: inner("in"), out: inner("out") });
    case "intersection":
      return cloneWith(s, { left: inner("left"), right: inner("right") });
    case "tuple":
      return cloneWith(s, { items: each("items"), ...(def.rest ? { rest: inner("rest") } : {}) });
  }
  // A kind this walk does not know could hold a strict object: fail where the schema is made
  // (module load, so any test finds it), never parse answers half-tolerantly.
  throw new Error(`answerSchema: no rule for a "${def.type}" schema`);
}

/**
 * `schema` for parsing an answer: every object in it, at any depth, drops
 * unknown fields instead of refusing them; everything else (types, bounds,
 * refinements, defaults) is unchanged. Build it once, where the schema is.
 * Throws there for a schema it cannot make safely tolerant: a kind it has no
 * rule for, or a union of objects without a discriminator.
 *
 * @example Strict for storage, tolerant for the answer
 * ```ts
 * import * as z from "zod";
 * import { answerSchema } from "./answer_schema.ts";
 *
 * const Stored = z.strictObject({ a: z.strictObject({ b: z.number() }) });
 * const Answer = answerSchema(Stored);
 * Answer.parse({ a: { b: 1, later: true }, later: 2 }); // { a: { b: 1 } }
 * Stored.safeParse({ a: { b: 1, later: true } }).success; // false
 * ```
 */
export function answerSchema<T extends z.ZodType>(schema: T): T {
  return tolerant(schema) as T;
}
