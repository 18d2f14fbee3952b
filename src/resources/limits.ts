/**
 * Size and shape limits for JSON from outside (request bodies, resources):
 * nesting depth, array length, string length, keys per object. Checked by an
 * iterative walk (no recursion, so a 10,000-deep document is measured, not a
 * stack overflow) before a schema, a serializer or storage ever sees the
 * value; the first value past a limit is reported with its path.
 *
 * @module
 */
import { BadParameterError } from "../errors.ts";
import { formatPath } from "../util/zod_error.ts";

/** The limits; see {@linkcode JSON_LIMITS}. */
export interface JsonLimits {
  /** Deepest nesting of objects and arrays (the top level is depth 1). */
  maxDepth: number;
  /** Most elements in one array. */
  maxArrayLength: number;
  /** Longest string value or object key, in UTF-16 code units. */
  maxStringLength: number;
  /** Most keys in one object. */
  maxObjectKeys: number;
}

/**
 * Limits of every request body and resource. Generous for every real
 * document (the deepest resource field is about 6 levels, the longest string
 * a PEM certificate chain) and far below what breaks a parser or serializer.
 */
export const JSON_LIMITS: Readonly<JsonLimits> = {
  maxDepth: 32,
  maxArrayLength: 1000,
  maxStringLength: 16 * 1024,
  maxObjectKeys: 256,
};

/**
 * The issue as a `BAD_PARAMETER` error naming the field (`spec.allow.x.x…`,
 * cut short when very long), under `prefix` when the value sits inside a
 * larger document.
 */
export function limitError(issue: LimitIssue, prefix: (string | number)[] = []): BadParameterError {
  const full = formatPath([...prefix, ...issue.path]);
  const path = full.length > 120 ? `${full.slice(0, 120)}…` : full;
  return new BadParameterError(`${path}: ${issue.message}`, { details: { path } });
}

/** Where a value broke a limit, and which. */
export interface LimitIssue {
  /** Path from the root: object keys and array indexes. */
  path: (string | number)[];
  /** What was too big. */
  message: string;
}

/**
 * The first place `value` exceeds `limits`, or null when it is within them.
 *
 * @example
 * ```ts
 * import { checkJsonLimits } from "./limits.ts";
 * checkJsonLimits({ spec: { logins: ["root"] } }); // null
 * checkJsonLimits({ a: "x".repeat(20_000) })?.path; // ["a"]
 * ```
 */
export function checkJsonLimits(
  value: unknown,
  limits: JsonLimits = JSON_LIMITS,
): LimitIssue | null {
  // Each node seen gets an index: its value, its parent's index, its key and
  // its depth. The path is rebuilt from the parents only for the issue
  // returned: copying it at every node made this walk the largest allocator
  // of a refresh join (it runs on every body and stored resource).
  const values: unknown[] = [value];
  const stack: number[] = [0];
  const parents: number[] = [-1];
  const keys: (string | number)[] = [""];
  const depths: number[] = [0];
  // Numbers, booleans and null break no limit: they get no node.
  const visit = (v: unknown, parent: number, key: string | number) => {
    if (typeof v !== "string" && (v === null || typeof v !== "object")) return;
    values.push(v);
    parents.push(parent);
    keys.push(key);
    depths.push(depths[parent] + 1);
    stack.push(values.length - 1);
  };
  const issue = (node: number, message: string): LimitIssue => {
    const path: (string | number)[] = [];
    for (let i = node; i > 0; i = parents[i]) path.push(keys[i]);
    return { path: path.reverse(), message };
  };
  while (stack.length > 0) {
    const node = stack.pop()!;
    const v = values[node];
    if (typeof v === "string") {
      if (v.length > limits.maxStringLength) {
        return issue(node, `string longer than ${limits.maxStringLength} characters`);
      }
      continue;
    }
    if (v === null || typeof v !== "object") continue; // the root only
    if (depths[node] + 1 > limits.maxDepth) {
      return issue(node, `nested deeper than ${limits.maxDepth} levels`);
    }
    if (Array.isArray(v)) {
      if (v.length > limits.maxArrayLength) {
        return issue(node, `array longer than ${limits.maxArrayLength} elements`);
      }
      for (let i = v.length - 1; i >= 0; i--) visit(v[i], node, i);
      continue;
    }
    const names = Object.keys(v);
    if (names.length > limits.maxObjectKeys) {
      return issue(node, `object with more than ${limits.maxObjectKeys} keys`);
    }
    for (let i = names.length - 1; i >= 0; i--) {
      const key = names[i];
      if (key.length > limits.maxStringLength) {
        return issue(node, `key longer than ${limits.maxStringLength} characters`);
      }
      visit((v as Record<string, unknown>)[key], node, key);
    }
  }
  return null;
}
