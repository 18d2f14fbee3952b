/**
 * The one translation of zod issues into Keybound's error wording: the field
 * path (an unknown key included) and a short message, as the server, tbot's
 * config loader and tctl's resource files all report them.
 *
 * @module
 */
import type * as z from "zod";

/** A field path: keys and list indexes. */
export type FieldPath = (string | number)[];

/** One zod issue in Keybound's terms. */
export interface FieldIssue {
  /** The field at fault; for unknown keys, the first unknown key. */
  path: FieldPath;
  /** The path to show before the message: for unknown keys, the object holding them. */
  shownPath: FieldPath;
  /** What is wrong, without the path. */
  message: string;
  /** True when the issue is unknown keys (the message names them). */
  unknownKey: boolean;
}

/** `a.b[2].c` from a zod issue path. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || "(root)";
}

/**
 * Translates one zod issue. `zodWording` keeps zod's "Invalid input: "
 * prefix (tbot's config errors have always shown it).
 *
 * @example
 * ```ts
 * import * as z from "zod";
 * import { fieldIssue } from "./zod_error.ts";
 * const r = z.strictObject({ a: z.number() }).safeParse({ a: "x" });
 * if (!r.success) fieldIssue(r.error.issues[0]).message; // "expected number, received string"
 * ```
 */
export function fieldIssue(issue: z.core.$ZodIssue, { zodWording = false } = {}): FieldIssue {
  const base = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  if (issue.code === "unrecognized_keys") {
    const keys = issue.keys.map((k) => `"${k}"`).join(", ");
    return {
      path: [...base, issue.keys[0]],
      shownPath: base,
      message: `unknown field${issue.keys.length > 1 ? "s" : ""} ${keys}`,
      unknownKey: true,
    };
  }
  let message = zodWording ? issue.message : issue.message.replace(/^Invalid (input|option): /, "");
  if (issue.code === "invalid_type" && /received undefined$/.test(issue.message)) {
    message = `required field is missing (expected ${issue.expected})`;
  }
  return { path: base, shownPath: base, message, unknownKey: false };
}

/** `path: message` for a {@linkcode FieldIssue} (no path for unknown keys at the root). */
export function formatFieldIssue(issue: FieldIssue): string {
  if (issue.unknownKey && issue.shownPath.length === 0) return issue.message;
  return `${formatPath(issue.shownPath)}: ${issue.message}`;
}

/**
 * `issue`, or for a union none of whose options matched (zod names no field
 * then: "(root): Invalid input"), the issue of the option that got furthest
 * into the value (the longest path, unions within an option followed), its
 * path made whole: for a join answer with a step of an unknown type,
 * `step.type`, not the missing `result` of the other option. The one rule
 * for both sides of the wire: the server's `BAD_PARAMETER` and the client's
 * unusable answer (src/protocol/http_client.ts) name the same field.
 *
 * @example
 * ```ts
 * import * as z from "zod";
 * import { furthestIssue } from "./zod_error.ts";
 * const answer = z.union([
 *   z.object({ result: z.string() }),
 *   z.object({ step: z.object({ type: z.literal("challenge") }) }),
 * ]);
 * const r = answer.safeParse({ step: { type: "other" } });
 * if (!r.success) furthestIssue(r.error.issues[0]).path; // ["step", "type"]
 * ```
 */
export function furthestIssue(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== "invalid_union") return issue;
  // Each option's own furthest first (a union within an option reaches deeper than
  // its own place); on a tie, the earlier option.
  const options = issue.errors.flatMap((option) => option[0] ? [furthestIssue(option[0])] : []);
  if (options.length === 0) return issue;
  const furthest = options.reduce((a, b) => b.path.length > a.path.length ? b : a);
  return { ...furthest, path: [...issue.path, ...furthest.path] };
}

/**
 * `path: message` for the first issue (or each issue, joined by "; "), a
 * union's as {@linkcode furthestIssue} finds it.
 */
export function formatZodError(err: z.ZodError, all = false): string {
  const issues = all ? err.issues : err.issues.slice(0, 1);
  return issues.map((i) => formatFieldIssue(fieldIssue(furthestIssue(i), { zodWording: true })))
    .join("; ");
}

/**
 * The path of the first issue, for `details.path`, a union's as
 * {@linkcode furthestIssue} finds it (the field {@linkcode formatZodError} names).
 */
export function firstIssuePath(err: z.ZodError): string {
  const i = err.issues[0];
  return i ? formatPath(fieldIssue(furthestIssue(i)).path) : "(root)";
}
