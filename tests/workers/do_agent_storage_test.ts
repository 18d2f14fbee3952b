/**
 * DoAgentStorage after `preload` (one storage call reading every file, as
 * the bot object does at wake): the agent-storage conformance checks in
 * workerd, each storage preloaded before the checks use it, so reads come
 * from the copy until the first write. The same checks without the copy run
 * in tests/storage/agent_storage_conformance_test.ts.
 *
 * @module
 */
import { assert } from "../_assert.ts";
import { reportResults } from "../storage/_report.ts";
import { bundle, startWorker } from "./_harness.ts";

Deno.test("agent storage conformance: Durable Object storage read through preload", async (t) => {
  await using script = await bundle(new URL("./agent_storage_worker.ts", import.meta.url));
  await using worker = await startWorker(script.path, {
    durableObjects: { AGENT_STORAGE_HOST: "AgentStorageHost" },
  });
  const res = await worker.fetch("/?preloaded");
  const body = await res.text();
  assert(res.ok, `conformance worker answered HTTP ${res.status}: ${body}`);
  await reportResults(t, JSON.parse(body));
});
