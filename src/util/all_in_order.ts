/**
 * Waiting for several operations together without leaving any running.
 *
 * @module
 */

/**
 * Like `Promise.all`, but it waits for every promise to settle (none is left
 * running after it returns or throws), and the error thrown is the first in
 * argument order, not in time.
 *
 * @example
 * ```ts
 * import { allInOrder } from "./all_in_order.ts";
 * const [a, b] = await allInOrder([Promise.resolve(1), Promise.resolve("two")]);
 * ```
 */
export async function allInOrder<T extends readonly unknown[]>(
  promises: { [K in keyof T]: Promise<T[K]> },
): Promise<T> {
  const settled = await Promise.allSettled(promises);
  for (const r of settled) if (r.status === "rejected") throw r.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
