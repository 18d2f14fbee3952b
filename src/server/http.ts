/**
 * Request-body handling shared by all routes: JSON parsing and schema
 * validation with errors that name the field.
 *
 * @module
 */
import type { Context } from "hono";
import type * as z from "zod";
import { KeyboundError } from "../errors.ts";
import { firstIssuePath, formatZodError } from "../util/zod_error.ts";
import { checkJsonLimits, limitError } from "../resources/limits.ts";

/** Parses the request body as JSON and validates it; throws 400s with the field path. */
export async function readJson<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  let text: string;
  try {
    text = await c.req.text();
  } catch {
    throw new KeyboundError("BAD_REQUEST", "could not read request body");
  }
  return parseJson(text, schema);
}

/** Parses `text` as JSON and validates it; throws 400s with the field path. */
export function parseJson<S extends z.ZodType>(text: string, schema: S): z.infer<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new KeyboundError("BAD_REQUEST", "request body is not valid JSON");
  }
  // Before the schema: zod, serializers and storage recurse, this check does not.
  const tooBig = checkJsonLimits(raw);
  if (tooBig) throw limitError(tooBig);
  const r = schema.safeParse(raw);
  if (!r.success) {
    throw new KeyboundError("BAD_PARAMETER", formatZodError(r.error), {
      details: { path: firstIssuePath(r.error) },
    });
  }
  return r.data;
}
