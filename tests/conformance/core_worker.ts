/**
 * Test Worker: runs the core conformance cases inside workerd and answers
 * with the results as JSON.
 *
 * @module
 */
import { runCases } from "../storage/_results.ts";
import { CORE_CASES } from "./core_cases.ts";
import { CAPABILITIES, detectRuntime } from "./env.ts";

export default {
  async fetch(): Promise<Response> {
    const runtime = detectRuntime();
    const results = await runCases(
      CORE_CASES,
      CAPABILITIES[runtime],
      () => Promise.resolve(null),
      () => Promise.resolve(),
    );
    return Response.json({ runtime, results });
  },
};
