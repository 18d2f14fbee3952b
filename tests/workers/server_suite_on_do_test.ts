/**
 * The server's existing join integration tests, run again with the cluster
 * state in a real ClusterState Durable Object in workerd instead of Deno KV
 * (`KEYBOUND_TEST_BACKEND=durable_object`, see ./_test_backend.ts). The
 * tests are unchanged; only the backend under them differs.
 *
 * @module
 */
import { assert } from "../_assert.ts";
import { TEST_BACKEND_ENV } from "./_test_backend.ts";

const SUITE = [
  "tests/server/join_onboarding_test.ts",
  "tests/server/join_refresh_recovery_test.ts",
  "tests/server/join_concurrency_test.ts",
];

Deno.test("server join integration tests pass on Durable Object storage in workerd", async () => {
  const root = decodeURIComponent(new URL("../../", import.meta.url).pathname);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--unstable-kv", "--no-check", ...SUITE],
    cwd: root,
    env: { [TEST_BACKEND_ENV]: "durable_object", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const summary = text.split("\n").find((l) => /^(ok|FAILED) \| \d+ passed/.test(l)) ?? "";
  assert(out.success, `the server suite failed on Durable Object storage:\n${text.slice(-4000)}`);
  assert(/\| 0 failed/.test(summary) && !/\| 0 passed/.test(summary), `summary: ${summary}`);
  console.log(`  ${summary}`);
});
