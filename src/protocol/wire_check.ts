/**
 * A faster way to the same answer as a wire schema's `safeParse` for parsed
 * JSON, where zod cannot compile its parsers.
 *
 * zod 4 builds a fast parser for each object schema with `new Function`.
 * Cloudflare's runtime forbids that, so there zod walks its generic
 * interpreted path, and the two join answers of a renewal cost a Durable
 * Object about 0.3–0.4 ms of CPU (docs/benchmarks.md, Session 7: edge).
 * {@linkcode wireParser} derives, once per schema, a plain function from the
 * schema's own definition that accepts exactly what the schema accepts and
 * returns what zod returns (a copy with the schema's keys in its order). The
 * schema stays the source of truth: it is read, never restated, and any
 * construct this file does not know (a refinement, a transform, a default,
 * a format check...) makes the whole schema fall back to zod. So does every
 * answer the derived check refuses, so errors are zod's, word for word.
 *
 * @module
 */
import type * as z from "zod";

/** What a derived check returns: the parsed value, or {@linkcode REFUSED}. */
type Check = (value: unknown) => unknown;

/** Marks a value a derived check refuses (zod then says why). */
const REFUSED: unique symbol = Symbol("refused");

/** The definition fields this file reads; anything else present means "unknown". */
interface Def {
  type: string;
  checks?: {
    _zod: { def: { check: string; minimum?: number; maximum?: number; format?: string } };
  }[];
  shape?: Record<string, z.ZodType>;
  catchall?: z.ZodType;
  element?: z.ZodType;
  options?: z.ZodType[];
  innerType?: z.ZodType;
  values?: unknown[];
  discriminator?: string;
  inclusive?: boolean;
  coerce?: boolean;
}

const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** Length bounds of a string or array, or null when a check is not a length bound. */
function lengthBounds(def: Def): { min: number; max: number } | null {
  let min = 0;
  let max = Infinity;
  for (const c of def.checks ?? []) {
    const d = c._zod.def;
    if (d.check === "min_length" && typeof d.minimum === "number") min = Math.max(min, d.minimum);
    else if (d.check === "max_length" && typeof d.maximum === "number") {
      max = Math.min(max, d.maximum);
    } else return null;
  }
  return { min, max };
}

function compileObject(def: Def): Check | null {
  // No catchall: zod strips unknown keys; `never` (strictObject): refuses them.
  const strict = def.catchall !== undefined;
  if (strict && defOf(def.catchall!).type !== "never") return null;
  if (def.checks?.length) return null;
  const keys = Object.keys(def.shape ?? {});
  const fields: { key: string; check: Check; optin?: string; optout?: string }[] = [];
  for (const key of keys) {
    if (key === "__proto__") return null;
    const schema = def.shape![key];
    const check = compile(schema);
    if (!check) return null;
    const { optin, optout } = (schema as unknown as { _zod: { optin?: string; optout?: string } })
      ._zod;
    // A default substitutes a value: not handled.
    if (optin !== undefined && optin !== "optional") return null;
    fields.push({ key, check, optin, optout });
  }
  const known = new Set(keys);
  return (value) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return REFUSED;
    const input = value as Record<string, unknown>;
    if (strict) {
      for (const key in input) if (!known.has(key)) return REFUSED;
    }
    const out: Record<string, unknown> = {};
    // zod's rules for a property (handlePropertyResult in zod's core), for the
    // two kinds of field this file takes: required, and optional.
    for (const f of fields) {
      const present = f.key in input;
      const optional = f.optin !== undefined && f.optout === "optional";
      if (!present && optional) continue;
      const r = f.check(input[f.key]);
      if (r === REFUSED) return REFUSED;
      if (!present) return REFUSED; // required and absent, even where undefined would do
      out[f.key] = r;
    }
    return out;
  };
}

/**
 * The definition fields each kind of schema may carry here. Any other field
 * may change what the schema accepts (a top-level format such as `z.email()`
 * carries its pattern on the definition itself), so it makes the schema
 * unknown. `error` only words the message, which zod gives anyway.
 */
const KNOWN_FIELDS: Record<string, readonly string[]> = {
  string: ["checks"],
  number: ["checks"],
  boolean: ["checks"],
  unknown: ["checks"],
  literal: ["checks", "values"],
  object: ["checks", "shape", "catchall"],
  array: ["checks", "element"],
  nullable: ["checks", "innerType"],
  optional: ["checks", "innerType"],
  union: ["checks", "options", "inclusive", "discriminator"],
};

/** Fields of a length or integer check that do not change what it accepts. */
const KNOWN_CHECK_FIELDS = new Set([
  "check",
  "minimum",
  "maximum",
  "format",
  "type",
  "when",
  "abort",
  "error",
]);

/** True if `def` and its checks carry only fields this file knows for its kind. */
function onlyKnownFields(def: Def): boolean {
  const known = KNOWN_FIELDS[def.type];
  if (!known) return false;
  for (const [field, value] of Object.entries(def)) {
    if (value === undefined || field === "type" || field === "error") continue;
    if (field === "coerce" && value === false) continue;
    if (!known.includes(field)) return false;
  }
  return (def.checks ?? []).every((c) =>
    Object.keys(c._zod.def).every((field) => KNOWN_CHECK_FIELDS.has(field))
  );
}

/** The derived check of `schema`, or null when it uses something this file does not know. */
function compile(schema: z.ZodType): Check | null {
  const def = defOf(schema);
  if (!onlyKnownFields(def)) return null;
  switch (def.type) {
    case "string": {
      const b = lengthBounds(def);
      if (!b) return null;
      return (v) => typeof v === "string" && v.length >= b.min && v.length <= b.max ? v : REFUSED;
    }
    case "number": {
      const checks = def.checks ?? [];
      if (checks.length === 0) {
        return (v) => typeof v === "number" && Number.isFinite(v) ? v : REFUSED;
      }
      const only = checks.length === 1 ? checks[0]._zod.def : null;
      if (only?.check !== "number_format" || only.format !== "safeint") return null;
      return (v) => Number.isSafeInteger(v) ? v : REFUSED;
    }
    case "boolean":
      return def.checks?.length ? null : (v) => typeof v === "boolean" ? v : REFUSED;
    case "unknown":
      return def.checks?.length ? null : (v) => v;
    case "literal": {
      if (def.checks?.length || !def.values) return null;
      const values = new Set(def.values);
      return (v) => values.has(v) ? v : REFUSED;
    }
    case "object":
      return compileObject(def);
    case "array": {
      const b = lengthBounds(def);
      const element = def.element ? compile(def.element) : null;
      if (!b || !element) return null;
      return (v) => {
        if (!Array.isArray(v) || v.length < b.min || v.length > b.max) return REFUSED;
        const out = new Array(v.length);
        for (let i = 0; i < v.length; i++) {
          const r = element(v[i]);
          if (r === REFUSED) return REFUSED;
          out[i] = r;
        }
        return out;
      };
    }
    case "nullable":
    case "optional": {
      const inner = def.innerType && !def.checks?.length ? compile(def.innerType) : null;
      if (!inner) return null;
      const empty = def.type === "nullable" ? null : undefined;
      return (v) => v === empty ? v : inner(v);
    }
    case "union": {
      // A plain union takes the first option that accepts; a discriminated
      // one, the option its discriminator names, the only one that can.
      // An exclusive union (z.xor) refuses several matches: not handled.
      if (def.checks?.length || (def.inclusive === false && def.discriminator === undefined)) {
        return null;
      }
      const options = (def.options ?? []).map(compile);
      if (options.length === 0 || options.some((o) => !o)) return null;
      return (v) => {
        for (const option of options) {
          const r = option!(v);
          if (r !== REFUSED) return r;
        }
        return REFUSED;
      };
    }
    default:
      return null;
  }
}

const parsers = new WeakMap<z.ZodType, Check | null>();

/**
 * `schema.safeParse` for a value from `JSON.parse`, through the derived check
 * when the schema has one and it accepts; zod's own parse otherwise.
 *
 * @example
 * ```ts ignore
 * const parsed = wireParse(JoinResponse, JSON.parse(text));
 * if (!parsed.success) throw new Error(formatZodError(parsed.error));
 * ```
 */
export function wireParse<S extends z.ZodType>(
  schema: S,
  json: unknown,
): z.ZodSafeParseResult<z.infer<S>> {
  let check = parsers.get(schema);
  if (check === undefined) {
    check = compile(schema);
    parsers.set(schema, check);
  }
  if (check) {
    const r = check(json);
    if (r !== REFUSED) return { success: true, data: r as z.infer<S> };
  }
  return schema.safeParse(json);
}

/** True if `schema` has a derived check (tests: the renewal's answers must keep theirs). */
export function hasWireCheck(schema: z.ZodType): boolean {
  if (!parsers.has(schema)) parsers.set(schema, compile(schema));
  return parsers.get(schema) !== null;
}
