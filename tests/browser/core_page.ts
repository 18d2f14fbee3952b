/**
 * Test page: runs the core conformance cases in the browser, then a join
 * over real `fetch` against the auth service that serves this page. The test
 * calls `globalThis.keyboundConformance(tokenName, secret)` and gets the
 * results as JSON.
 *
 * @module
 */
import { runCases } from "../storage/_results.ts";
import { CORE_CASES, type CoreCase, joinThenRefresh } from "../conformance/core_cases.ts";
import { CAPABILITIES, detectRuntime } from "../conformance/env.ts";

async function conformance(tokenName: string, secret: string) {
  const runtime = detectRuntime();
  const overFetch: CoreCase = {
    name: "join over fetch: first join and refresh against the loopback auth service",
    run: () => joinThenRefresh({ baseUrl: location.origin, tokenName, secret }),
  };
  const results = await runCases(
    [...CORE_CASES, overFetch],
    CAPABILITIES[runtime],
    () => Promise.resolve(null),
    () => Promise.resolve(),
  );
  return { runtime, results };
}

Object.assign(globalThis, { keyboundConformance: conformance });
