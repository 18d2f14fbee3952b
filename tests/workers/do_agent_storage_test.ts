/**
 * DoAgentStorage after `preload` (one storage call reading every file, as
 * the bot object does at wake): the agent-storage conformance checks in
 * workerd, each storage preloaded before the checks use it, so reads come
 * from the copy until the first write. The same checks without the copy run
 * in tests/storage/agent_storage_conformance_test.ts. A write, group write or
 * delete issued while `preload`'s read is in flight must not leave a copy
 * older than it behind.
 *
 * @module
 */
import { assert, assertEquals } from "../_assert.ts";
import { reportResults } from "../storage/_report.ts";
import { bundle, startWorker } from "./_harness.ts";

/** The JSON answer of test Worker `file` (one Durable Object class `host` bound as `binding`). */
async function answerOf(file: string, binding: string, host: string, path: string) {
  await using script = await bundle(new URL(file, import.meta.url));
  await using worker = await startWorker(script.path, { durableObjects: { [binding]: host } });
  const res = await worker.fetch(path);
  const body = await res.text();
  assert(res.ok, `${file} answered HTTP ${res.status}: ${body}`);
  return JSON.parse(body);
}

Deno.test("agent storage conformance: Durable Object storage read through preload", async (t) => {
  await reportResults(
    t,
    await answerOf(
      "./agent_storage_worker.ts",
      "AGENT_STORAGE_HOST",
      "AgentStorageHost",
      "/?preloaded",
    ),
  );
});

Deno.test("DoAgentStorage: a change made while preload reads is never hidden by its copy", async () => {
  assertEquals(
    await answerOf(
      "./do_agent_storage_race_worker.ts",
      "PRELOAD_RACE_HOST",
      "PreloadRaceHost",
      "/",
    ),
    [
      { name: "write", read: "new", stored: "new" },
      { name: "writeGroup", read: "new", stored: "new" },
      { name: "delete", read: null, stored: null },
    ],
  );
});
