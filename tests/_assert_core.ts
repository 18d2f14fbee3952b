/**
 * Assertion helpers that run on every runtime the conformance cases are
 * bundled for (Deno, workerd, Chromium): no `node:*` import. Deep equality
 * lives in `_assert.ts`, which re-exports these.
 *
 * @module
 */

/** Thrown when an assertion fails. */
export class AssertionError extends Error {
  /** @param message what failed */
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

/** Asserts `cond` is truthy. */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new AssertionError(msg);
}

function json(v: unknown): string {
  return JSON.stringify(v, (_k, x) => {
    if (x instanceof Uint8Array) return { Uint8Array: Array.from(x) };
    if (x && typeof x === "object" && !Array.isArray(x)) {
      return Object.fromEntries(Object.entries(x).sort(([a], [b]) => a < b ? -1 : 1));
    }
    if (typeof x === "number" && !Number.isFinite(x)) return `number:${x}`;
    return x;
  });
}

/**
 * Asserts two JSON values (plus `Uint8Array`) are equal, for the suites that
 * are bundled into workerd and Chromium where `node:assert` does not exist.
 * Everywhere else use `assertEquals` from `_assert.ts` (deep strict equality).
 */
export function assertJsonEquals<T>(actual: T, expected: T, msg?: string): void {
  const a = json(actual);
  const e = json(expected);
  if (a !== e) throw new AssertionError(`${msg ? msg + ": " : ""}expected ${e}, got ${a}`);
}

/** Asserts `Object.is(actual, expected)` (primitives, or the same object). */
export function assertStrictEquals<T>(actual: T, expected: T, msg?: string): void {
  if (!Object.is(actual, expected)) {
    throw new AssertionError(
      `${msg ? msg + ": " : ""}expected ${String(expected)}, got ${String(actual)}`,
    );
  }
}

/** Asserts `text` contains `part`. */
export function assertStringIncludes(text: string, part: string, msg?: string): void {
  if (!text.includes(part)) {
    throw new AssertionError(
      `${msg ? msg + ": " : ""}expected ${JSON.stringify(text)} to include ${JSON.stringify(part)}`,
    );
  }
}

/** Asserts `text` matches `re`. */
export function assertMatch(text: string, re: RegExp, msg?: string): void {
  if (!re.test(text)) {
    throw new AssertionError(
      `${msg ? msg + ": " : ""}expected ${JSON.stringify(text)} to match ${re}`,
    );
  }
}

/**
 * Asserts `fn` rejects; optionally that the error is an instance of `cls`
 * and its message includes `includes`. Returns the error.
 */
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  cls?: new (...args: any[]) => E,
  includes?: string,
): Promise<E> {
  try {
    await fn();
  } catch (e) {
    if (cls && !(e instanceof cls)) {
      throw new AssertionError(
        `expected ${cls.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`,
      );
    }
    if (includes && !String((e as Error)?.message).includes(includes)) {
      throw new AssertionError(
        `expected error message to include ${JSON.stringify(includes)}, got ${
          JSON.stringify((e as Error)?.message)
        }`,
      );
    }
    return e as E;
  }
  throw new AssertionError("expected function to reject");
}

/** Asserts `fn` throws synchronously; returns the error. */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  cls?: new (...args: any[]) => E,
  includes?: string,
): E {
  try {
    fn();
  } catch (e) {
    if (cls && !(e instanceof cls)) {
      throw new AssertionError(`expected ${cls.name}, got ${(e as Error)?.name}`);
    }
    if (includes && !String((e as Error)?.message).includes(includes)) {
      throw new AssertionError(
        `expected error message to include ${JSON.stringify(includes)}, got ${
          JSON.stringify((e as Error)?.message)
        }`,
      );
    }
    return e as E;
  }
  throw new AssertionError("expected function to throw");
}
