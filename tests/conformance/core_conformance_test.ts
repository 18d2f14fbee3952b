/**
 * One core conformance suite, two runtimes: the cases in ./core_cases.ts run
 * here under Deno and, bundled, inside workerd (miniflare). Runtime
 * differences come from the capability table in ./env.ts.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { runCases } from "../storage/_results.ts";
import { reportResults } from "../storage/_report.ts";
import { bundle, startWorker } from "../workers/_harness.ts";
import { CORE_CASES } from "./core_cases.ts";
import { CAPABILITIES, detectRuntime } from "./env.ts";

Deno.test("core conformance on Deno", async (t) => {
  assertEquals(detectRuntime(), "deno");
  await reportResults(
    t,
    await runCases(
      CORE_CASES,
      CAPABILITIES.deno,
      () => Promise.resolve(null),
      () => Promise.resolve(),
    ),
  );
});

Deno.test("core conformance in workerd", async (t) => {
  await using script = await bundle(new URL("./core_worker.ts", import.meta.url));
  await using worker = await startWorker(script.path);
  const res = await worker.fetch("/");
  const body = await res.text();
  assert(res.ok, `core conformance worker answered HTTP ${res.status}: ${body}`);
  const { runtime, results } = JSON.parse(body);
  assertEquals(runtime, "workerd");
  await reportResults(t, results);
});
