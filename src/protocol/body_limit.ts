/**
 * The largest request body the auth service reads (docs/protocol.md §1.1).
 * Shared by the server, which refuses a larger body, and clients that must
 * refuse to send one before anything is written (tctl create -f).
 *
 * @module
 */

/**
 * Maximum request body in bytes.
 *
 * @example
 * ```ts
 * const fits = new TextEncoder().encode("{}").length <= MAX_BODY_BYTES; // true
 * ```
 */
export const MAX_BODY_BYTES = 64 * 1024;
