/**
 * Turns zod issues into one-line messages that name the field path, the way
 * every Keybound error about bad input does.
 *
 * @module
 */
import type { z } from "zod";

/** `a.b[2].c` from a zod issue path. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || "(root)";
}

/** `path: message` for the first issue (or each issue, joined by "; "). */
export function formatZodError(err: z.ZodError, all = false): string {
  const issues = all ? err.issues : err.issues.slice(0, 1);
  return issues.map((i) => {
    if (i.code === "unrecognized_keys") {
      const base = formatPath(i.path);
      return `${base === "(root)" ? "" : base + ": "}unknown field${i.keys.length > 1 ? "s" : ""} ${
        i.keys.map((k) => `"${k}"`).join(", ")
      }`;
    }
    return `${formatPath(i.path)}: ${i.message}`;
  }).join("; ");
}

/** The path of the first issue, for `details.path`. */
export function firstIssuePath(err: z.ZodError): string {
  const i = err.issues[0];
  if (!i) return "(root)";
  if (i.code === "unrecognized_keys") return formatPath([...i.path, i.keys[0]]);
  return formatPath(i.path);
}
