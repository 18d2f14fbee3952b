/**
 * Which runtime the conformance suite is running in (Deno, workerd or Chromium), and what that runtime
 * can do. Differences between runtimes live in this one table, not in
 * scattered `if`s: a case names the capability it needs and is reported as
 * skipped where it is missing.
 *
 * @module
 */

/** The runtimes the suite runs in. */
export type RuntimeName = "deno" | "workerd" | "chromium";

/** What a runtime can do, where runtimes differ. */
export interface Capabilities {
  /** `structuredClone` (and so Deno KV) accepts a `CryptoKey`. */
  cloneCryptoKey: boolean;
  /** Importing an ECDSA PKCS#8 key as Ed25519 fails at import (workerd accepts it, fails later). */
  ed25519ImportChecksKeyType: boolean;
}

/** The capability table. */
export const CAPABILITIES: Readonly<Record<RuntimeName, Capabilities>> = {
  deno: { cloneCryptoKey: true, ed25519ImportChecksKeyType: true },
  workerd: { cloneCryptoKey: false, ed25519ImportChecksKeyType: false },
  // Headless Chromium lacks nothing the core uses (measured with Debian's chromium 156).
  chromium: { cloneCryptoKey: true, ed25519ImportChecksKeyType: true },
};

/** The runtime this code runs in. */
export function detectRuntime(): RuntimeName {
  if (globalThis.navigator?.userAgent === "Cloudflare-Workers") return "workerd";
  if ("Deno" in globalThis) return "deno";
  if ("document" in globalThis && /Chrom(e|ium)\//.test(globalThis.navigator?.userAgent)) {
    return "chromium";
  }
  throw new Error(`unknown runtime: ${globalThis.navigator?.userAgent}`);
}
