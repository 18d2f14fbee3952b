/**
 * Minimal assertion helpers (jsr:@std/assert is not reachable from here); deep equality is
 * `node:assert/strict`, which tests may use (only `src/` may not).
 *
 * @module
 */
import { deepStrictEqual, notDeepStrictEqual } from "node:assert/strict";
import { AssertionError } from "./_assert_core.ts";

export * from "./_assert_core.ts";

function failure(err: unknown, msg?: string): AssertionError {
  const detail = err instanceof Error ? err.message : String(err);
  return new AssertionError(msg ? `${msg}: ${detail}` : detail);
}

/**
 * Asserts deep strict equality (`node:assert/strict`): Map, Set, typed
 * arrays, Date, NaN, prototypes and `undefined` properties all count.
 */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  try {
    deepStrictEqual(actual, expected);
  } catch (err) {
    throw failure(err, msg);
  }
}

/** Asserts deep strict inequality. */
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  try {
    notDeepStrictEqual(actual, expected);
  } catch (err) {
    throw failure(err, msg);
  }
}
