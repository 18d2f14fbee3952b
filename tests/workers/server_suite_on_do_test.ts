/**
 * The server's existing join integration tests, run again with the cluster
 * state in a real ClusterState Durable Object in workerd instead of Deno KV
 * (`KEYBOUND_TEST_BACKEND=durable_object`, see ./_test_backend.ts). The
 * tests are unchanged; only the backend under them differs.
 *
 * @module
 */
import { runTestFiles } from "../_child_suite.ts";
import { TEST_BACKEND_ENV } from "./_test_backend.ts";

const SUITE = [
  "tests/server/join_onboarding_test.ts",
  "tests/server/join_refresh_recovery_test.ts",
  "tests/server/join_concurrency_test.ts",
];

Deno.test("server join integration tests pass on Durable Object storage in workerd", async () => {
  const summary = await runTestFiles(
    SUITE,
    "the server suite on Durable Object storage",
    { [TEST_BACKEND_ENV]: "durable_object" },
  );
  console.log(`  ${summary}`);
});
