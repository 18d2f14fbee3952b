/**
 * Runs tests/own_process/, tests that count what the whole process holds,
 * in a `deno test` process of their own (see each file's module comment).
 *
 * @module
 */
import { runTestFiles } from "./_child_suite.ts";

const FILES = ["tests/own_process/front_descriptors.ts"];

Deno.test("tests that count the process's descriptors pass in a process of their own", async () => {
  console.log(`  ${await runTestFiles(FILES, "tests/own_process/")}`);
});
